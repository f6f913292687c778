// The last step of a sync and of a bundle import: once every object is in the store, the images are
// recorded and then the containers made, so nothing appears on the target before all it needs.
import CAS
import Foundation

struct SyncLanding {
    let store: Store
    let images: ImageStore
    let arrival: SyncArrivalOptions
    let maxLayerExpansion: UInt64?
    /// Killed here (kill -9 tests) once everything has arrived and nothing is recorded yet; a test
    /// stops the process at the second (SIGSTOP) to run a GC while only a reservation holds it.
    let beforeRefsFailpoint: String
    let stopBeforeRefsFailpoint: String

    /// Checks each image's blobs and unpacked layers (unpacking what a resumed blob left to do),
    /// records the images, then lands the containers. Every container is tried; the first failure
    /// is thrown after the others landed. `source` names who should have sent a missing blob.
    func land(images landing: [SyncImage], containers: [SyncContainer], source: String) throws {
        for image in landing {
            for d in image.record.blobs where !store.hasBlob(d) {
                throw RuntimeError.layerMissing("\(d) of \(image.name), which \(source) did not send")
            }
            for l in image.record.layers where try BlobContent.cas({ try store.layerRecord(diffID: l.diffID) }) == nil {
                let m = try BlobContent.cas { try store.unpackLayer(blob: l.digest, maxExpansion: maxLayerExpansion) }
                guard m.diffID == l.diffID else {
                    throw RuntimeError.syncBadStream("layer \(l.digest) of \(image.name) unpacks to \(m.diffID), not \(l.diffID)")
                }
            }
        }
        Failpoint.hit(beforeRefsFailpoint)
        Failpoint.stop(stopBeforeRefsFailpoint)
        for image in landing {
            try images.write(image.record, as: try ImageName(parsing: image.name))
        }
        var firstError: Error? = nil
        for c in containers {
            do { _ = try ContainerArrival.land(repository: images.repository, container: c, options: arrival) } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }
}
