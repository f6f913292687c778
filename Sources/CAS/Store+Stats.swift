// stats: what the store holds and how much sharing saves.

/// Numbers about a store.
public struct StoreStats: Sendable, Equatable {
    public var blobCount: Int
    public var blobBytes: UInt64
    public var layerCount: Int
    public var unpackedFiles: Int
    public var unpackedBytes: UInt64
    /// Number of holders (images, containers, pending pulls).
    public var refCount: Int
    /// Bytes referenced, counting an object once per holder that references it.
    public var referencedBytes: UInt64
    /// Bytes stored: blob bytes plus unpacked bytes.
    public var storedBytes: UInt64 { blobBytes + unpackedBytes }
    /// referencedBytes / storedBytes (1 for an empty store): how many times sharing pays off.
    public var dedupRatio: Double { storedBytes == 0 ? 1 : Double(referencedBytes) / Double(storedBytes) }
    public var indexDirectory: String
    public var onNetworkFilesystem: Bool
    public var filesystem: String
}

extension Store {
    /// Counts blobs, layers and refs (bringing the index in line with the files on the way).
    public func stats() throws -> StoreStats {
        let blobs = try reconcileBlobs().records
        let layers = try reconcileLayers().records
        let refs = try self.refs()
        var sizeOf = [Digest: UInt64]()
        for b in blobs { sizeOf[b.digest] = b.size }
        for l in layers { sizeOf[l.diffID, default: 0] += l.bytes }
        let referenced = refs.values.reduce(UInt64(0)) { acc, ds in acc + ds.reduce(0) { $0 + (sizeOf[$1] ?? 0) } }
        return StoreStats(
            blobCount: blobs.count, blobBytes: blobs.reduce(0) { $0 + $1.size },
            layerCount: layers.count, unpackedFiles: layers.reduce(0) { $0 + $1.fileCount },
            unpackedBytes: layers.reduce(0) { $0 + $1.bytes }, refCount: refs.count, referencedBytes: referenced,
            indexDirectory: indexDirectory, onNetworkFilesystem: onNetworkFilesystem,
            filesystem: FilesystemKind.name(magic: filesystemMagic))
    }
}
