// Where everything lives inside a store directory; the one place that builds store paths.

/// Paths of a store rooted at `root`. See docs/store-format.md for the meaning of each.
public struct StoreLayout: Sendable, Hashable {
    public static let formatVersion = 1

    public let root: String

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    public var storeFile: String { root + "/store.json" }
    public var blobsDir: String { root + "/blobs/sha256" }
    public var layersDir: String { root + "/layers/sha256" }
    public var refsDir: String { root + "/refs" }
    public var repositoriesDir: String { root + "/repositories" }
    public var tmpDir: String { root + "/tmp" }
    public var locksDir: String { root + "/locks" }
    /// The default index location; on network filesystems the index lives on local disk instead.
    public var localIndexDir: String { root + "/index" }
    /// A group store's private layer copies, one directory per member uid.
    public var privateDir: String { root + "/private" }
    public func privateCopiesDir(uid: UInt32) -> String { privateDir + "/" + String(uid) }
    /// Member `uid`'s private copy of a layer another member unpacked (see Store+Private.swift).
    public func privateLayerDir(uid: UInt32, _ diffID: Digest) -> String { privateCopiesDir(uid: uid) + "/" + diffID.hex }
    public var refsLock: String { locksDir + "/refs.lock" }
    public var gcLock: String { locksDir + "/gc.lock" }

    public func blobDir(_ d: Digest) -> String { blobsDir + "/" + d.prefix }
    public func blobPath(_ d: Digest) -> String { blobsDir + "/" + d.prefix + "/" + d.hex }
    public func layerDir(_ diffID: Digest) -> String { layersDir + "/" + diffID.hex }
    /// The unpacked tree of a layer.
    public func layerRoot(_ diffID: Digest) -> String { layerDir(diffID) + "/root" }
    /// The layer's manifest (entries, whiteouts, per-file digests): the file truth the index is rebuilt from.
    public func layerManifest(_ diffID: Digest) -> String { layerDir(diffID) + "/layer.json" }
}
