// Releasing one holder (rmi): drop its ref and delete at once the blobs and layers it alone held,
// using the index's refcounts for just its own digests, so no walk of the store is needed.
#if canImport(Glibc)
import Glibc
#endif

/// What releasing a holder removed.
public struct ReleaseReport: Sendable, Equatable {
    public var removedBlobs: [Digest] = []
    public var removedLayers: [Digest] = []
    /// Digests of the holder that another holder (image, container, running pull) still holds.
    public var kept: [Digest] = []
    public var bytesFreed: UInt64 = 0
    /// The store's filesystem refuses locks, so nothing was deleted (only the holder removed).
    public var locksUnsupported = false
}

extension Store {
    /// Removes `holder`'s ref, then deletes every blob and unpacked layer it named that no other
    /// holder names any more (a layer is also kept while any holder names one of its blobs, as GC
    /// does). Runs under the gc and refs locks, so a pull reserving a digest at the same time either
    /// comes first (and the digest is kept) or comes after (and finds it missing and downloads it).
    /// Releasing an unknown holder removes nothing.
    @discardableResult
    public func release(holder: String) throws -> ReleaseReport {
        guard Holder.isValid(holder) else {
            throw CASError.internalFailure("invalid holder name '\(holder)': use letters, digits, '/' and . _ - : @ + = ,")
        }
        var report = ReleaseReport()
        let gcLock: FileLock, refsLock: FileLock
        do {
            gcLock = try FileLock(path: layout.gcLock)
            refsLock = try FileLock(path: layout.refsLock)
        } catch CASError.locksUnsupported {
            // Without locks nothing is deleted (a pull elsewhere may be reserving these digests): the
            // holder goes, its objects stay for a GC where locks work.
            let digests = (try? files.readRefFile(layout.refsDir + "/" + Holder.fileName(holder)))?.digests ?? []
            try removeRef(holder: holder)
            report.kept = Array(Set(digests)).sorted()
            report.locksUnsupported = true
            return report
        }
        defer { refsLock.unlock(); gcLock.unlock() }

        let path = layout.refsDir + "/" + Holder.fileName(holder)
        guard FileIO.exists(path) else { return report }
        let digests = try files.readRefFile(path).digests

        let gen = files.refsGeneration() + 1
        try files.writeAtomically(layout.refsGenerationFile, Array("\(gen)\n".utf8))
        try deleteRefFile(holder: holder)
        // The counts below must be right: when the index cannot mirror the change it is resynced
        // from the ref files (which we hold locked), and if even that fails nothing is deleted.
        do { try mirrorRefChange(holder, to: nil, generation: gen) } catch {
            try resyncRefsLocked(generation: gen)
        }
        func held(_ d: Digest) throws -> Bool {
            try index.read { t in (try t.get(.refcounts, d.rawBytes).flatMap { IndexCodec.u64($0, at: 0) } ?? 0) > 0 }
        }
        for d in Set(digests).sorted() {
            if try held(d) {
                report.kept.append(d)
                continue
            }
            if let m = try? files.layerManifest(d) {
                if try m.blobs.contains(where: held) {
                    report.kept.append(d)
                } else if removeLayer(d) {
                    report.removedLayers.append(d)
                    report.bytesFreed += m.totalBytes
                }
            }
            if let size = files.blobRecord(d)?.size, removeBlob(d) {
                report.removedBlobs.append(d)
                report.bytesFreed += size
            }
        }
        return report
    }
}
