// What unpacking a layer produced: entries with their original metadata and per-file digests,
// whiteouts and opaque directories. Written as layer.json beside the unpacked tree.

/// One entry of a layer as the tar described it. Paths are relative to the layer root, without
/// leading "/" or "./", normalised (no "." or ".." components).
public struct LayerEntry: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case file = "f", directory = "d", symlink = "l", hardlink = "h", fifo = "p"
        case charDevice = "c", blockDevice = "b"
    }
    public var path: String
    public var kind: Kind
    /// Permission bits as in the tar (including setuid/setgid/sticky); the store's copy may be
    /// stricter (read-only, no setuid), this is what a copy or an export restores.
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var mtime: Int64
    /// Regular files: byte size and sha256 of the content.
    public var size: UInt64?
    public var digest: Digest?
    /// Symlinks: the link text. Hardlinks: the layer path of the entry linked to.
    public var target: String?
    /// Device nodes: major and minor numbers. Devices are never created in the store.
    public var devMajor: UInt32?
    public var devMinor: UInt32?

    public init(path: String, kind: Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Int64 = 0,
                size: UInt64? = nil, digest: Digest? = nil, target: String? = nil,
                devMajor: UInt32? = nil, devMinor: UInt32? = nil) {
        self.path = path; self.kind = kind; self.mode = mode; self.uid = uid; self.gid = gid
        self.mtime = mtime; self.size = size; self.digest = digest; self.target = target
        self.devMajor = devMajor; self.devMinor = devMinor
    }
}

/// An entry of the tar that was not written to disk, with the reason (shown to the user as a note).
public struct SkippedEntry: Codable, Sendable, Equatable {
    public var path: String
    public var reason: String
    public init(path: String, reason: String) { self.path = path; self.reason = reason }
}

public struct LayerManifest: Codable, Sendable, Equatable {
    public static let formatVersion = 1
    public var format: Int
    /// sha256 of the uncompressed tar stream.
    public var diffID: Digest
    /// Compressed blobs known to unpack to this layer (the same tar may be compressed differently).
    public var blobs: [Digest]
    /// "gzip", "zstd", "xz", "bzip2" or "none", as detected from the content.
    public var compression: String
    public var entries: [LayerEntry]
    /// Paths this layer deletes from the layers below it (from ".wh.NAME" entries).
    public var whiteouts: [String]
    /// Directories whose content from lower layers is hidden (from ".wh..wh..opq" entries); "" is the root.
    public var opaqueDirs: [String]
    /// Entries present in the tar but not written (device nodes, hostile paths), with the reason.
    public var skipped: [SkippedEntry]

    public init(diffID: Digest, blobs: [Digest], compression: String, entries: [LayerEntry],
                whiteouts: [String], opaqueDirs: [String], skipped: [SkippedEntry]) {
        self.format = LayerManifest.formatVersion
        self.diffID = diffID; self.blobs = blobs; self.compression = compression
        self.entries = entries; self.whiteouts = whiteouts; self.opaqueDirs = opaqueDirs
        self.skipped = skipped
    }

    // Indexed loops: closures over `entries` copied every entry (retaining its strings), which showed
    // in profiles of layers with many files.
    public var fileCount: Int {
        var n = 0
        for i in entries.indices where entries[i].kind == .file { n += 1 }
        return n
    }
    public var totalBytes: UInt64 {
        var n: UInt64 = 0
        for i in entries.indices where entries[i].kind == .file { n += entries[i].size ?? 0 }
        return n
    }
}
