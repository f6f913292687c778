// Store.release(holder:): what rmi deletes at once, and what it must keep (other holders, pending
// pulls, layers still named through one of their blobs).
import Foundation
import Testing
@testable import CAS

@Suite("Store release")
struct StoreReleaseTests {
    @Test func releaseDeletesOnlyWhatNoOtherHolderHolds() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let shared = try store.ingest(bytes: randomBytes(1000)).digest
        let own = try store.ingest(bytes: randomBytes(2000)).digest
        let reserved = try store.ingest(bytes: randomBytes(3000)).digest
        let unrelated = try store.ingest(bytes: randomBytes(400)).digest
        let ownLayer = try installHandmadeLayer(store, blob: own, files: ["a": randomBytes(10)])
        let viaBlob = try installHandmadeLayer(store, blob: shared, files: ["b": randomBytes(20)])

        try store.setRef(holder: "repo/r/image/a:1", digests: [shared, own, reserved, ownLayer.diffID, viaBlob.diffID])
        try store.setRef(holder: "repo/r/image/b:1", digests: [shared])
        try store.setRef(holder: Holder.pending(tag: "pull-x"), digests: [reserved])

        let report = try store.release(holder: "repo/r/image/a:1")
        #expect(Set(report.removedBlobs) == [own])
        #expect(report.removedLayers == [ownLayer.diffID])
        #expect(Set(report.kept) == [shared, reserved, viaBlob.diffID])
        #expect(report.bytesFreed == 2000 + 10)
        #expect(!store.hasBlob(own))
        #expect(store.hasBlob(shared) && store.hasBlob(reserved), "held by another image and by a running pull")
        #expect(store.hasBlob(unrelated), "release never touches what the holder did not name")
        #expect(try store.layer(diffID: viaBlob.diffID) != nil, "a layer is kept while one of its blobs is held")
        #expect(try store.layer(diffID: ownLayer.diffID) == nil)
        #expect(try store.ref(holder: "repo/r/image/a:1") == nil)
        #expect(try store.refCount(of: shared) == 1)
        #expect(try store.verify(repair: false).isHealthy)

        // Releasing again, or an unknown holder, removes nothing.
        #expect(try store.release(holder: "repo/r/image/a:1") == ReleaseReport())
        #expect(throws: CASError.self) { try store.release(holder: "../bad") }
    }

    @Test func restartedWriterStoresOnlyTheNewBytes() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let good = randomBytes(5000)
        let w = try store.beginBlob(expected: try sha(good), expectedSize: 5000)
        try w.write(randomBytes(3000))
        try w.restart()
        #expect(w.bytesWritten == 0)
        try w.write(good)
        let r = try w.commit()
        #expect(r.digest == (try sha(good)))
        #expect(try FileIO.readFile(store.blobPath(r.digest)) == good)
    }
}
