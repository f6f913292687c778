// The receiving side of a sync: answers the offer once with what the store lacks, stores verified
// objects as they arrive (layers unpacked meanwhile), and records images only when all is there.
import CAS
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct SyncReceiver {
    /// Blobs at least this large are written to a partial file that a rerun continues.
    static let resumableSize: Int64 = 1 << 20
    /// Failpoints: killed after the Nth object stored ("sync-receiver-object-N", N from 1), half-way
    /// through the first large blob, and after every object but before any image is recorded.
    static let failpointPrefix = "sync-receiver-object-"
    static let midBlobFailpoint = "sync-receiver-mid-blob"
    static let beforeRefsFailpoint = "sync-receiver-before-refs"
    static let stopBeforeRefsFailpoint = "sync-receiver-stop-before-refs"

    let connection: SyncConnection
    /// The receiving repository: created when asked to (and missing), nil when it does not exist.
    let openRepository: (_ create: Bool) throws -> Repository?
    let arrival: SyncArrivalOptions
    let maxLayerExpansion: UInt64?
    var progress: (@Sendable (SyncEvent) -> Void)?

    func run(dryRun: Bool) throws -> SyncResult {
        let offer = try connection.expect(.offer, as: SyncOffer.self)
        do {
            return try receive(offer, dryRun: dryRun)
        } catch {
            if case RuntimeError.syncConnectionLost = error {} else if case RuntimeError.syncFarEndFailed = error {} else {
                connection.sendFailure(error)
            }
            throw error
        }
    }

    private func receive(_ offer: SyncOffer, dryRun: Bool) throws -> SyncResult {
        guard let repo = try openRepository(!dryRun) else {
            // A dry run into a repository that does not exist yet: everything would travel.
            return try finish(offer, wants: offer.objects.map { SyncWant.Wanted(digest: $0.digest, offset: 0) }, dryRun: true)
        }
        let store = try repo.openStore()
        let images = try ContainerStore.imageStore(repository: repo, store: store)
        // Reserve before looking at what the store has: what is seen present cannot vanish before
        // the records hold it, and what arrives is kept by a GC that runs meanwhile.
        let holder = Holder.pending(tag: "sync-receive-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        let diffIDs = offer.images.flatMap { $0.record.layers.map(\.diffID) }
        if !dryRun { try BlobContent.cas { try store.setRef(holder: holder, digests: offer.objects.map(\.digest) + diffIDs) } }
        defer { if !dryRun { try? store.removeRef(holder: holder) } }

        var wants = [SyncWant.Wanted]()
        var prepared = [Digest: BlobWriter]()
        defer { for w in prepared.values { w.keepPartial() } }
        for o in offer.objects {
            if try BlobContent.cas({ try store.blobRecord(o.digest) }) != nil { continue }
            var offset: Int64 = 0
            if dryRun {
                offset = min(Int64(store.partialBlobSize(o.digest)), o.size)
            } else if o.size >= Self.resumableSize,
                      let w = try BlobContent.cas({ try store.beginResumableBlob(expected: o.digest, expectedSize: UInt64(o.size), mediaType: o.mediaType) }) {
                offset = Int64(w.bytesWritten)
                prepared[o.digest] = w
            }
            wants.append(.init(digest: o.digest, offset: offset))
        }
        if dryRun { return try finish(offer, wants: wants, dryRun: true) }
        try connection.send(.want, json: SyncWant(objects: wants))
        let objects = Dictionary(offer.objects.map { ($0.digest, $0) }, uniquingKeysWith: { a, _ in a })
        progress?(.plan(objects: wants.map { w in (w.digest, (objects[w.digest]?.size ?? 0) - w.offset) },
                        present: offer.objects.count - wants.count))

        var layerDiffID = [Digest: Digest]()
        for i in offer.images { for l in i.record.layers { layerDiffID[l.digest] = l.diffID } }
        let unpacks = BackgroundUnpacks(store: store, limit: 2, maxExpansion: maxLayerExpansion)
        // Also on a failure: an unpack still running when the process exits would leave its temp
        // directory behind (and a temp of a live owner is not swept).
        defer { unpacks.waitQuietly() }
        // Containers land as soon as what they need is here.
        let landing = SyncLanding(store: store, images: images, arrival: arrival, maxLayerExpansion: maxLayerExpansion,
                                  beforeRefsFailpoint: Self.beforeRefsFailpoint, stopBeforeRefsFailpoint: Self.stopBeforeRefsFailpoint)
        let containers = ContainerLanding(landing: landing, images: offer.images, containers: offer.containers)
        containers.start()
        var landed = false
        defer { if !landed { containers.abandon() } }
        var midBlobArmed = Failpoint.armed(Self.midBlobFailpoint)
        var index = 0
        while true {
            guard let f = try connection.receive() else { throw RuntimeError.syncConnectionLost("early") }
            switch f.type {
            case .object:
                let h = try SyncConnection.objectHeader(f)
                guard index < wants.count, wants[index].digest == h.digest, let o = objects[h.digest],
                      UInt64(wants[index].offset) == h.offset, UInt64(o.size) == h.size else {
                    throw RuntimeError.syncBadStream("the sender sent \(h.digest) at offset \(h.offset), which was not asked for there")
                }
                let writer = try prepared.removeValue(forKey: h.digest)
                    ?? BlobContent.cas { try store.beginBlob(expected: h.digest, expectedSize: h.size, mediaType: o.mediaType) }
                // A resumed blob is unpacked from the file once complete (its first bytes came in an
                // earlier run). A cut connection keeps what came of a large blob for the rerun;
                // anything damaged or refused goes.
                try unpacks.ingest(writer, digest: h.digest, size: h.size, diffID: layerDiffID[h.digest], whileArriving: h.offset == 0,
                                   keepPartial: { if case RuntimeError.syncConnectionLost = $0 { return true } else { return false } },
                                   mismatch: { RuntimeError.syncObjectMismatch(h.digest.description, actual: $0.description) }) { sink in
                    while writer.bytesWritten < h.size {
                        let c = try connection.expect(.chunk)
                        try sink(c.payload)
                        progress?(.progress(index: index, bytes: Int64(writer.bytesWritten - h.offset)))
                        if midBlobArmed && o.size >= Self.resumableSize && writer.bytesWritten >= h.size / 2 {
                            midBlobArmed = false
                            Failpoint.hit(Self.midBlobFailpoint)
                        }
                    }
                }
                containers.poke()
                progress?(.done(index: index))
                index += 1
                Failpoint.hit(Self.failpointPrefix + String(index))
            case .refs:
                guard index == wants.count else {
                    throw RuntimeError.syncBadStream("the sender ended after \(index) of the \(wants.count) objects asked for")
                }
                // The sender names everything it offered: the frame marks the end of the objects.
                _ = try SyncConnection.decode(SyncRefs.self, f)
                try unpacks.wait()
                let result = try land(offer, wants: wants, landing: landing, containers: containers)
                landed = true
                return result
            case .failure:
                throw RuntimeError.syncFarEndFailed(try SyncConnection.decode(SyncFailure.self, f).message)
            default:
                throw RuntimeError.syncBadStream("a \(f.type) frame came among the objects")
            }
        }
    }

    /// Every object is here: the images and containers that did not land while they streamed.
    private func land(_ offer: SyncOffer, wants: [SyncWant.Wanted], landing: SyncLanding,
                      containers: ContainerLanding) throws -> SyncResult {
        try landing.land(images: offer.images, containers: containers, source: "the sender")
        return try finish(offer, wants: wants, dryRun: false, landed: offer.images, landedContainers: offer.containers)
    }

    /// The result, sent to the sender as the report and returned.
    private func finish(_ offer: SyncOffer, wants: [SyncWant.Wanted], dryRun: Bool,
                        landed: [SyncImage]? = nil, landedContainers: [SyncContainer]? = nil) throws -> SyncResult {
        if dryRun {
            try connection.send(.want, json: SyncWant(objects: wants))
            _ = try connection.expect(.refs, as: SyncRefs.self)
        }
        let wanted = Set(wants.map(\.digest))
        let sizes = Dictionary(offer.objects.map { ($0.digest, $0) }, uniquingKeysWith: { a, _ in a })
        var report = SyncReport()
        report.objectsSent = wants.count
        report.objectsPresent = offer.objects.count - wants.count
        report.objectBytes = wants.reduce(0) { $0 + (sizes[$1.digest]?.size ?? 0) - $1.offset }
        let items = (landed ?? offer.images).map { image -> SyncedItem in
            let own = Set(image.record.blobs)
            let sent = own.intersection(wanted).count
            return SyncedItem(name: image.name, objectsSent: sent, objectsPresent: own.count - sent)
        }
        report.images = items.count
        let containerItems = (landedContainers ?? offer.containers).map { c -> SyncedItem in
            let sent = wanted.contains(c.delta.digest) ? 1 : 0
            return SyncedItem(name: c.names.first ?? c.id, objectsSent: sent, objectsPresent: 1 - sent)
        }
        report.containers = containerItems.count
        report.bytesOnWire = connection.bytesOnWire
        let result = SyncResult(report: report, images: items, containers: containerItems,
                                wouldSend: dryRun ? wants.compactMap { w in
                                    sizes[w.digest].map { SyncObject(digest: $0.digest, size: $0.size - w.offset, mediaType: $0.mediaType) }
                                } : [],
                                dryRun: dryRun)
        try connection.send(.report, json: result)
        return result
    }
}

/// Layers unpacked in the background while later objects arrive, at most `limit` at a time.
final class BackgroundUnpacks: Sendable {
    private let store: Store
    private let maxExpansion: UInt64?
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    private let failure = Mutex<(any Error)?>(nil)

    init(store: Store, limit: Int, maxExpansion: UInt64?) {
        self.store = store; self.maxExpansion = maxExpansion
        slots = DispatchSemaphore(value: limit)
    }

    /// Stores one object that arrives in chunks (a sync's frames, a bundle's tar entry) through
    /// `writer`, verified at commit, then finishes its unpack here when it is a layer (`diffID`).
    /// With `whileArriving` a layer is unpacked as it arrives, as pull does. `feed` calls its argument
    /// with each chunk in order. On a failure the writer keeps its partial file when `keepPartial`
    /// says so, else drops it; a digest mismatch is thrown as `mismatch(actual)`.
    func ingest(_ writer: BlobWriter, digest: Digest, size: UInt64, diffID: Digest?, whileArriving: Bool,
                keepPartial: (any Error) -> Bool, mismatch: (Digest) -> any Error,
                feed: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let stream = whileArriving
            ? diffID.flatMap { try? store.beginStreamingUnpack(blob: digest, expectedSize: size, diffID: $0, maxExpansion: maxExpansion) }
            : nil
        do {
            try feed { chunk in
                try BlobContent.cas { try writer.write(chunk) }
                stream?.feed(chunk)
            }
            do { _ = try BlobContent.cas { try writer.commit() } } catch CASError.digestMismatch(_, let actual) {
                throw mismatch(actual)
            }
        } catch {
            stream?.abandon()
            if keepPartial(error) { writer.keepPartial() } else { writer.abort() }
            throw error
        }
        if let diffID { add(blob: digest, diffID: diffID, stream: stream) }
    }

    /// Finishes the streamed unpack of `blob` (committed), or unpacks it from the blob file.
    func add(blob: Digest, diffID: Digest, stream: StreamingUnpack?) {
        slots.wait()
        group.enter()
        let job = UnpackJob(store: store, blob: blob, diffID: diffID, stream: stream, maxExpansion: maxExpansion)
        let thread = Thread { [self] in
            defer { slots.signal(); group.leave() }
            do { try job.run() } catch { failure.withLock { if $0 == nil { $0 = error } } }
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Waits for every unpack; throws the first failure.
    func wait() throws {
        group.wait()
        if let e = failure.withLock({ $0 }) { throw e }
    }

    func waitQuietly() { group.wait() }
}

/// One layer to adopt or unpack. @unchecked Sendable: the StreamingUnpack is handed over after
/// its last feed, and only the unpack thread touches it from then on.
private struct UnpackJob: @unchecked Sendable {
    let store: Store
    let blob: Digest
    let diffID: Digest
    let stream: StreamingUnpack?
    let maxExpansion: UInt64?

    func run() throws {
        if try store.layerRecord(diffID: diffID) != nil, stream == nil { return }
        let m: LayerManifest
        do {
            m = try stream?.finish() ?? store.unpackLayer(blob: blob, maxExpansion: maxExpansion)
        } catch let e as CASError {
            throw RuntimeError.syncBadStream("layer \(blob) cannot be unpacked: \(e)")
        }
        guard m.diffID == diffID else {
            throw RuntimeError.syncBadStream("layer \(blob) unpacks to \(m.diffID), not the \(diffID) its image names")
        }
    }
}
