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
    /// Pending refs of processes that are gone.
    public var droppedPendingRefs: [String] = []
    /// Bytes of blob files and unpacked regular files freed.
    public var bytesFreed: UInt64 = 0

    /// Plain-language lines for the user.
    public var summary: [String] {
        let verb = dryRun ? "would remove" : "removed"
        var out = ["\(verb) \(removedBlobs.count) blob(s) and \(removedLayers.count) unpacked layer(s), \(bytesFreed) bytes"]
        if !droppedPendingRefs.isEmpty {
            out.append("\(dryRun ? "would drop" : "dropped") \(droppedPendingRefs.count) reservation(s) of processes that are gone")
        }
        return out
    }
}

extension Store {
    /// Removes unreferenced blobs and layers. With `dryRun` nothing changes and the report lists
    /// exactly what a real run would remove now.
    public func gc(dryRun: Bool) throws -> GCReport {
        var report = GCReport(dryRun: dryRun)
        let gcLock = try FileLock(path: layout.gcLock)
        defer { gcLock.unlock() }
        // The refs lock is held to the end: a pull that reserves a digest after we read the refs
        // would otherwise skip downloading a blob we are about to delete.
        let refsLock = try FileLock(path: layout.refsLock)
        defer { refsLock.unlock() }

        var refs = try files.refs()
        for holder in refs.keys.sorted() where Holder.isDeadPending(holder) {
            report.droppedPendingRefs.append(holder)
            refs[holder] = nil
        }
        if !dryRun && !report.droppedPendingRefs.isEmpty {
            let gen = files.refsGeneration() + 1
            try files.writeAtomically(layout.refsGenerationFile, Array("\(gen)\n".utf8))
            for h in report.droppedPendingRefs { try deleteRefFile(holder: h) }
            try? resyncRefsLocked(generation: gen)
        }
        let held = Set(refs.values.joined())

        for d in try files.layerDiffIDs() where !held.contains(d) {
            // The file, not the index, decides: another host may have added a blob to this layer.
            if let m = try? files.layerManifest(d), m.blobs.contains(where: held.contains) { continue }
            let bytes = (try? files.layerManifest(d))??.totalBytes ?? 0
            if dryRun || removeLayer(d) {
                report.removedLayers.append(d)
                report.bytesFreed += bytes
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
