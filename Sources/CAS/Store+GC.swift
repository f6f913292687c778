// Garbage collection: under the gc and refs locks, remove every blob and unpacked layer that no
// ref holds (a layer is held through its diff_id or any of its blobs), and dead pending refs.
#if canImport(Glibc)
import Glibc
#endif

/// What GC removed (or, in a dry run, would remove).
public struct GCReport: Sendable {
    public var dryRun: Bool
    public var removedBlobs: [Digest] = []
    public var removedLayers: [Digest] = []
    /// Group stores: private layer copies of members no longer holding their layer ("<uid> <diff_id>").
    public var removedPrivateCopies: [String] = []
    /// Pending refs of processes that are gone.
    public var droppedPendingRefs: [String] = []
    /// Pending refs of processes on other hosts that outlived `Holder.foreignPendingLifetime`.
    public var expiredPendingRefs: [String] = []
    /// Bytes of blob files and unpacked regular files freed.
    public var bytesFreed: UInt64 = 0

    /// Plain-language lines for the user.
    public var summary: [String] {
        let verb = dryRun ? "would remove" : "removed"
        var out = ["\(verb) \(removedBlobs.count) blob(s) and \(removedLayers.count) unpacked layer(s)"
                   + (removedPrivateCopies.isEmpty ? "" : " and \(removedPrivateCopies.count) private layer cop\(removedPrivateCopies.count == 1 ? "y" : "ies")")
                   + ", \(bytesFreed) bytes"]
        if !droppedPendingRefs.isEmpty {
            out.append("\(dryRun ? "would drop" : "dropped") \(droppedPendingRefs.count) reservation(s) of processes that are gone")
        }
        if !expiredPendingRefs.isEmpty {
            out.append("\(dryRun ? "would drop" : "dropped") \(expiredPendingRefs.count) reservation(s) of processes on other hosts unchanged for more than \(Holder.foreignPendingLifetime / 3600) hours")
        }
        return out
    }
}

extension Store {
    /// Removes unreferenced blobs and layers, and in a group store the private layer copies whose
    /// member no longer references their layer. With `dryRun` nothing changes and the report lists
    /// exactly what a real run would remove now. Refused where the filesystem has no locks.
    public func gc(dryRun: Bool) throws -> GCReport {
        var report = GCReport(dryRun: dryRun)
        let gcLock: FileLock, refsLock: FileLock
        do {
            gcLock = try FileLock(path: layout.gcLock)
            // The refs lock is held to the end: a pull that reserves a digest after we read the refs
            // would otherwise skip downloading a blob we are about to delete.
            refsLock = try FileLock(path: layout.refsLock)
        } catch CASError.locksUnsupported(let path, _) {
            throw CASError.locksUnsupported(path: path, refused: "garbage collection is refused")
        }
        defer { refsLock.unlock(); gcLock.unlock() }

        let now = Int64(time(nil))
        var refFiles = try files.refFiles()
        var dropped = [String]()
        refFiles.removeAll { f in
            if Holder.isDeadPending(f.holder) {
                report.droppedPendingRefs.append(f.holder)
            } else if Holder.isExpiredForeignPending(f.holder, mtime: f.mtime, now: now) {
                report.expiredPendingRefs.append(f.holder)
            } else {
                return false
            }
            dropped.append(f.holder)
            return true
        }
        report.droppedPendingRefs.sort()
        report.expiredPendingRefs.sort()
        if !dryRun && !dropped.isEmpty {
            let gen = files.refsGeneration() + 1
            try files.writeAtomically(layout.refsGenerationFile, Array("\(gen)\n".utf8))
            for h in dropped { try deleteRefFile(holder: h) }
            try? resyncRefsLocked(generation: gen)
        }
        let held = Set(refFiles.flatMap(\.digests))

        for d in try files.layerDiffIDs() where !held.contains(d) {
            // The file, not the index, decides: another host may have added a blob to this layer.
            if let m = try? files.layerManifest(d), m.blobs.contains(where: held.contains) { continue }
            let bytes = (try? files.layerManifest(d))??.totalBytes ?? 0
            if dryRun || removeLayer(d) {
                report.removedLayers.append(d)
                report.bytesFreed += bytes
            }
        }
        var heldBy = [UInt32: Set<Digest>]()
        for f in refFiles { heldBy[f.uid, default: []].formUnion(f.digests) }
        let removed = Set(report.removedLayers)
        for c in privateCopies() where !removed.contains(c.diffID) {
            let mine = heldBy[c.uid] ?? []
            let m = try? files.layerManifest(c.diffID)
            if mine.contains(c.diffID) || (m?.blobs.contains(where: mine.contains) ?? false) { continue }
            if dryRun || removePrivateCopy(uid: c.uid, c.diffID) {
                report.removedPrivateCopies.append("\(c.uid) \(c.diffID)")
                report.bytesFreed += m?.totalBytes ?? 0
            }
        }
        for d in try files.blobDigests() where !held.contains(d) {
            let size = files.blobRecord(d)?.size ?? 0
            if dryRun || removeBlob(d) {
                report.removedBlobs.append(d)
                report.bytesFreed += size
            }
        }
        if !dryRun {
            for p in try files.orphanTypeFiles() { _ = unlink(p) }
        }
        return report
    }
}
