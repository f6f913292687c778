// The last step of a sync and of a bundle import: an image is recorded, then its containers made, only
// once every object it needs is in the store (during the stream, for a sync, or once all arrived).
import CAS
import Foundation

struct SyncLanding {
    let store: Store
    let images: ImageStore
    let arrival: SyncArrivalOptions
    let maxLayerExpansion: UInt64?
    /// Killed here (kill -9 tests) once everything has arrived and the rest is to be recorded; a
    /// test stops the process at the second (SIGSTOP) to run a GC while a reservation holds it.
    let beforeRefsFailpoint: String
    let stopBeforeRefsFailpoint: String

    /// Once every object has arrived: checks each image's blobs and unpacked layers (unpacking what a
    /// resumed blob left to do), records the images `containers` has not recorded already, then
    /// lands the containers it has not landed. Every container is tried; the first failure is
    /// thrown after the others landed. `source` names who should have sent a missing blob.
    func land(images landing: [SyncImage], containers: ContainerLanding, source: String) throws {
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
        try containers.record(landing)
        if let first = containers.finishAll().first { throw first }
    }

    /// Whether everything `container` needs is in the store: its image's blobs and unpacked layers
    /// (`image`, nil when the target had the image before) and its delta.
    func isReady(_ container: SyncContainer, image: SyncImage?) -> Bool {
        guard store.hasBlob(container.delta.digest) else { return false }
        guard let image else { return true }
        return image.record.blobs.allSatisfy { store.hasBlob($0) }
            && image.record.layers.allSatisfy { ((try? store.layerRecord(diffID: $0.diffID)) ?? nil) != nil }
    }

    /// Copy-mode containers first (every file copied), then auto, then link: the longest first, so
    /// that two at a time finish together.
    static func costliestFirst(_ containers: [SyncContainer]) -> [SyncContainer] {
        let rank = ["copy": 0, "auto": 1, "link": 2]
        return containers.enumerated().sorted { a, b in
            (rank[a.element.materialize] ?? 1, a.offset) < (rank[b.element.materialize] ?? 1, b.offset)
        }.map(\.element)
    }
}

/// The containers of a sync or bundle import, landed by two threads beside the receiving one: each
/// (with its image, recorded just before) as soon as every object it needs is stored, while the rest
/// still streams, and whatever is left once all has arrived (`finishAll`). Two at a time because
/// making a tree is bound by the kernel's work on one directory at a time, which two trees share out
/// over two CPUs; one at a time, and only at the end, with --force (two arrivals could remove the
/// same container that holds their names) or --execmode (setup runs one container per process).
final class ContainerLanding: @unchecked Sendable {
    // @unchecked: `pending`, `allArrived`, `abandoned`, `recorded`, `failures`, `running` and `started`
    // are only touched with `condition` locked; the rest is set in init and only read after.

    private let landing: SyncLanding
    private var pending: [(container: SyncContainer, image: SyncImage?)]
    private let early: Bool
    private let workers: Int
    private let condition = NSCondition()
    private var allArrived = false
    private var abandoned = false
    private var recorded = Set<String>()
    private var failures: [any Error] = []
    private var running = 0
    private var started = false

    /// `images` and `containers` are what arrives.
    init(landing: SyncLanding, images: [SyncImage], containers: [SyncContainer]) {
        self.landing = landing
        let serial = landing.arrival.force || landing.arrival.execmode != nil
        early = !serial
        workers = serial ? 1 : min(2, containers.count)
        pending = SyncLanding.costliestFirst(containers).map { c in
            (c, images.first { $0.name == c.image && $0.record.manifestDigest == c.imageManifest }
                ?? images.first { $0.record.manifestDigest == c.imageManifest })
        }
    }

    /// Starts the threads (before the objects stream).
    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        for _ in 0..<workers {
            running += 1
            let thread = Thread { [self] in work() }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Another object was stored: look again now rather than at the next tick.
    func poke() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Records the images that no container has recorded yet (all their objects are here).
    func record(_ images: [SyncImage]) throws {
        condition.lock()
        defer { condition.unlock() }
        for image in images { try recordLocked(image) }
    }

    /// Writes `image`'s record unless it is written already; `condition` must be locked, so each
    /// record is written once.
    private func recordLocked(_ image: SyncImage) throws {
        guard !recorded.contains(image.name) else { return }
        try landing.images.write(image.record, as: try ImageName(parsing: image.name))
        recorded.insert(image.name)
    }

    /// Every object is here and the images are recorded: lands what is left, waits for all, and
    /// returns the failures (every container is tried).
    func finishAll() -> [any Error] {
        start()
        return stop { $0.allArrived = true }
    }

    /// The stream failed: takes no more containers, waits for those being landed (they are complete).
    func abandon() {
        _ = stop { $0.abandoned = true }
    }

    private func stop(_ change: (ContainerLanding) -> Void) -> [any Error] {
        condition.lock()
        defer { condition.unlock() }
        change(self)
        condition.broadcast()
        while running > 0 { condition.wait() }
        return failures
    }

    private func work() {
        condition.lock()
        defer {
            running -= 1
            condition.broadcast()
            condition.unlock()
        }
        while !abandoned && !pending.isEmpty {
            guard let i = pending.firstIndex(where: { allArrived || (early && landing.isReady($0.container, image: $0.image)) }) else {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
                continue
            }
            let (c, image) = pending.remove(at: i)
            var failure: (any Error)?
            // The image is recorded before its first container.
            if let image {
                do { try recordLocked(image) } catch { failure = error }
            }
            condition.unlock()
            if failure == nil {
                do { _ = try ContainerArrival.land(repository: landing.images.repository, container: c, options: landing.arrival) } catch {
                    failure = error
                }
            }
            condition.lock()
            if let failure { failures.append(failure) }
        }
    }
}
