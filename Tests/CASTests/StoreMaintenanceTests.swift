// GC, verify and unpacked layers: what is removed, what is found, what repair does.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

@Suite("Store maintenance")
struct StoreMaintenanceTests {
    @Test func gcRemovesExactlyTheUnreferencedBlobsAndDryRunRemovesNothing() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let kept1 = try store.ingest(bytes: randomBytes(1000)).digest
        let kept2 = try store.ingest(bytes: randomBytes(2000), mediaType: "a/b").digest
        let gone1 = try store.ingest(bytes: randomBytes(300)).digest
        let gone2 = try store.ingest(bytes: randomBytes(400), mediaType: "c/d").digest
        let layerBlob = try store.ingest(bytes: randomBytes(500)).digest
        let keptLayer = try installHandmadeLayer(store, blob: kept1, files: ["a": randomBytes(10)])
        let layerByDiffID = try installHandmadeLayer(store, blob: layerBlob, files: ["b": randomBytes(20)])
        let goneLayer = try installHandmadeLayer(store, blob: gone1, files: ["c": randomBytes(30)])
        try store.setRef(holder: "repo/r/image/x:1", digests: [kept1, kept2])
        try store.setRef(holder: "repo/r/container/y", digests: [layerByDiffID.diffID])

        let dry = try store.gc(dryRun: true)
        #expect(Set(dry.removedBlobs) == [gone1, gone2, layerBlob])
        #expect(dry.removedLayers == [goneLayer.diffID])
        #expect(dry.bytesFreed == 300 + 400 + 500 + 30)
        #expect(blobFiles(store).count == 5)
        #expect(try store.layers().count == 3)

        let real = try store.gc(dryRun: false)
        #expect(Set(real.removedBlobs) == Set(dry.removedBlobs))
        #expect(real.removedLayers == dry.removedLayers)
        #expect(real.bytesFreed == dry.bytesFreed)
        #expect(blobFiles(store) == [kept1.hex, kept2.hex].sorted())
        #expect(try store.layers().map(\.diffID) == [keptLayer.diffID, layerByDiffID.diffID].sorted())
        #expect(!FileIO.exists(store.layout.layerDir(goneLayer.diffID)))
        #expect(!FileIO.exists(store.layout.blobTypePath(gone2)))
        #expect(FileIO.exists(store.layout.blobTypePath(kept2)))
        #expect(list(store.layout.tmpDir).isEmpty)
        #expect(try store.verify(repair: false).problems.isEmpty)
        // The index agrees with the files after GC.
        let dump = try store.dumpIndex()
        try store.rebuildIndex()
        #expect(try store.dumpIndex() == dump)
        #expect(try store.gc(dryRun: false).removedBlobs.isEmpty)
    }

    @Test func pendingRefOfADeadProcessIsDropped() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let reservedByDead = try store.ingest(bytes: randomBytes(100)).digest
        let reservedByUs = try store.ingest(bytes: randomBytes(100)).digest
        let dead = try spawn(["/bin/true"]).pid
        let deadHolder = "pending/\(ProcessIdentity.host)/\(dead)"
        try store.setRef(holder: deadHolder, digests: [reservedByDead])
        try store.setRef(holder: Holder.pending(tag: "pull1"), digests: [reservedByUs, try sha([9])])
        #expect(Holder.isDeadPending(deadHolder))
        #expect(!Holder.isDeadPending(Holder.pending()))
        #expect(!Holder.isDeadPending("pending/some-other-host/\(dead)"))

        // verify without repair only tells; a live pull's not-yet-downloaded digest is no problem.
        let v = try store.verify(repair: false)
        #expect(v.problems.isEmpty)
        #expect(v.notes.contains { $0.contains(deadHolder) })
        #expect(try store.refs()[deadHolder] != nil)

        let report = try store.gc(dryRun: false)
        #expect(report.droppedPendingRefs == [deadHolder])
        #expect(report.removedBlobs == [reservedByDead])
        #expect(try store.refs().keys.sorted() == [Holder.pending(tag: "pull1")])
        #expect(store.hasBlob(reservedByUs))
    }

    @Test func verifyFindsAModifiedBlobAndRepairRemovesIt() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let good = try store.ingest(bytes: randomBytes(10_000)).digest
        let bad = try store.ingest(bytes: randomBytes(10_000), mediaType: "x/y").digest
        try store.setRef(holder: "repo/r/image/x:1", digests: [good, bad])
        #expect(try store.verify(repair: false).isHealthy)

        try corruptByte(store.blobPath(bad), at: 5000)
        let found = try store.verify(repair: false)
        #expect(found.corruptBlobs == [bad])
        #expect(!found.isHealthy)
        #expect(found.summary.contains { $0.contains("blob \(bad) is corrupt") })
        #expect(try store.verify(blob: bad).corruptBlobs == [bad])
        #expect(try store.verify(blob: good).problems.isEmpty)
        #expect(store.hasBlob(bad))

        let repaired = try store.verify(repair: true)
        #expect(repaired.corruptBlobs == [bad])
        #expect(repaired.problems.filter { $0.kind == .corruptBlob }.allSatisfy { $0.repaired })
        // Removed, so the ref that needs it now misses it: repair cannot fetch, it says so.
        #expect(repaired.problems.contains { $0.kind == .missingObject && !$0.repaired })
        #expect(!store.hasBlob(bad))
        #expect(store.hasBlob(good))
        #expect(try store.blobRecord(bad) == nil)
        // The ref still wants it: that is reported until the image is pulled again.
        let after = try store.verify(repair: false)
        #expect(after.problems.map(\.kind) == [.missingObject])
        #expect(after.problems.first?.message.contains("pull that image again") == true)
    }

    @Test func verifyFindsAWritableBlob() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let d = try store.ingest(bytes: randomBytes(100)).digest
        _ = chmod(store.blobPath(d), 0o644)
        let r = try store.verify(repair: false)
        #expect(r.problems.map(\.kind) == [.writableBlob])
        #expect(try store.verify(repair: true).isHealthy)
        #expect(fileMode(store.blobPath(d)) == 0o444)
        #expect(try store.verify(repair: false).problems.isEmpty)
    }

    @Test func verifyFindsAModifiedLayerFileAndRepairRemovesTheLayer() throws {
        let dir = try TempDir()
        // Unsealed: a sealed layer's files cannot be changed by their user.
        let store = try Store.create(at: dir.path, environment: ["UDOCKER_STORE_PROTECTION": "detect"])
        let blob = try store.ingest(bytes: randomBytes(100)).digest
        let layer = try installHandmadeLayer(store, blob: blob, files: ["usr/bin/tool": randomBytes(4000), "etc/x": randomBytes(10)])
        let path = store.layerRoot(layer.diffID) + "/usr/bin/tool"
        #expect(fileMode(path) & 0o222 == 0)
        #expect(try store.verify(layer: layer.diffID).problems.isEmpty)

        try corruptByte(path, at: 100)
        let found = try store.verify(repair: false)
        #expect(found.problems.map(\.kind) == [.changedLayerFile])
        #expect(found.problems.first?.message.contains("/usr/bin/tool of unpacked layer \(layer.diffID) has changed in place (content") == true)
        #expect(found.problems.first?.file?.path == "usr/bin/tool")
        #expect(found.filesChecked == 2)
        #expect(try store.verify(layer: layer.diffID).problems.map(\.kind) == [.changedLayerFile])
        // The layer's blob is not a tar here, so the file cannot be restored in place: the layer goes.

        let repaired = try store.verify(repair: true)
        #expect(repaired.isHealthy)
        #expect(!FileIO.exists(store.layout.layerDir(layer.diffID)))
        #expect(try store.layer(diffID: layer.diffID) == nil)
        #expect(try store.layers().isEmpty)
        #expect(list(store.layout.tmpDir).isEmpty)
    }

    @Test func sameDiffIDFromASecondBlobJoinsTheExistingLayer() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let gz = try store.ingest(bytes: randomBytes(100)).digest
        let zst = try store.ingest(bytes: randomBytes(90)).digest
        let files = ["bin/x": Array("same content".utf8)]
        let first = try installHandmadeLayer(store, blob: gz, files: files, diffSeed: [1, 2, 3])
        let second = try installHandmadeLayer(store, blob: zst, files: files, diffSeed: [1, 2, 3])
        #expect(first.diffID == second.diffID)
        #expect(second.blobs == [gz, zst].sorted())
        #expect(try store.layer(diffID: first.diffID)?.blobs == [gz, zst].sorted())
        #expect(try store.layerRecord(diffID: first.diffID)?.blobs == [gz, zst].sorted())
        #expect(try store.fileDigest(layer: first.diffID, path: "bin/x")?.digest == (try sha(files["bin/x"] ?? [])))
        #expect(try store.fileDigest(layer: first.diffID, path: "bin/none") == nil)
        #expect(list(store.layout.tmpDir).isEmpty)
        // The blob-to-layer map answers unpackLayer without unpacking (the unpacker is not needed here).
        #expect(try store.unpackLayer(blob: zst).diffID == first.diffID)
        // Found by scanning layer.json files when the index does not know.
        try store.index.write { t in try t.clear(.blobLayers) }
        #expect(try store.unpackLayer(blob: gz).diffID == first.diffID)
        #expect(try store.layers().count == 1)
    }

    @Test(.enabled(if: layerUnpackerAvailable, "LayerUnpacker is written by another helper; runs once it is merged"))
    func unpackLayerFromARealTarIsIdempotent() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path + "/store")
        try FileIO.mkdirs(dir.path + "/src/etc")
        try writeFile(dir.path + "/src/etc/hello", Array("hello\n".utf8))
        try writeFile(dir.path + "/src/run.sh", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o755)
        #expect(try spawn(["/usr/bin/tar", "-cf", dir.path + "/layer.tar", "-C", dir.path + "/src", "."]).status == 0)
        let tar = try FileIO.readFile(dir.path + "/layer.tar")
        let blob = try store.ingest(fileAt: dir.path + "/layer.tar").digest
        let m = try store.unpackLayer(blob: blob)
        #expect(m.diffID == (try sha(tar)))  // an uncompressed tar is its own diff_id
        #expect(m.blobs == [blob])
        #expect(try FileIO.readFile(store.layerRoot(m.diffID) + "/etc/hello") == Array("hello\n".utf8))
        #expect(fileMode(store.layerRoot(m.diffID) + "/etc/hello") & 0o222 == 0)
        #expect(fileMode(store.layerRoot(m.diffID) + "/run.sh") & 0o111 != 0)
        #expect(try store.unpackLayer(blob: blob) == m)
        #expect(try store.verify(layer: m.diffID).problems.isEmpty)
        #expect(list(store.layout.tmpDir).isEmpty)
    }
}
