// Plain values the store hands out: what it knows about a blob and about an unpacked layer.

/// A blob in the store.
public struct BlobRecord: Sendable, Equatable {
    public var digest: Digest
    /// Size in bytes.
    public var size: UInt64
    /// Media type given when it was first stored (nil when none was given).
    public var mediaType: String?
    /// Last use, seconds since the epoch: the blob file's mtime, refreshed by `markUsed`.
    public var lastUse: Int64

    public init(digest: Digest, size: UInt64, mediaType: String?, lastUse: Int64) {
        self.digest = digest; self.size = size; self.mediaType = mediaType; self.lastUse = lastUse
    }
}

/// An unpacked layer in the store (the summary of its layer.json).
public struct LayerRecord: Sendable, Equatable {
    /// The layer's uncompressed digest, which names its directory.
    public var diffID: Digest
    /// Number of regular files and their total size.
    public var fileCount: Int
    public var bytes: UInt64
    /// Compressed blobs known to unpack to this layer.
    public var blobs: [Digest]
    /// Last use, seconds since the epoch: the mtime of layer.json.
    public var lastUse: Int64

    public init(diffID: Digest, fileCount: Int, bytes: UInt64, blobs: [Digest], lastUse: Int64) {
        self.diffID = diffID; self.fileCount = fileCount; self.bytes = bytes; self.blobs = blobs
        self.lastUse = lastUse
    }
}
