// The sending side of a sync: offers everything the selection needs, reads once what the receiver
// lacks, then streams those objects as stored, in chunks, without waiting for the receiver.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of the objects of one sync, on either side (the initiator shows it).
public enum SyncEvent: Sendable {
    /// The objects that travel (digest, bytes to send) and how many the receiver had already.
    case plan(objects: [(digest: Digest, bytes: Int64)], present: Int)
    case progress(index: Int, bytes: Int64)
    case done(index: Int)
}

struct SyncSender {
    let repository: Repository
    let connection: SyncConnection
    var progress: (@Sendable (SyncEvent) -> Void)?

    /// Failpoints: killed after the Nth object sent ("sync-sender-object-N", N from 1), and half-way
    /// through the first large blob ("sync-sender-mid-blob").
    static let failpointPrefix = "sync-sender-object-"
    static let midBlobFailpoint = "sync-sender-mid-blob"

    /// Runs the sending side after the hello and request. Returns what the receiver reports.
    func run(selection: SyncSelection, dryRun: Bool) throws -> SyncResult {
        let inventory: SyncInventory
        do { inventory = try SyncInventory.collect(repository: repository, selection: selection) } catch {
            connection.sendFailure(error)
            throw error
        }
        let store = try repository.openStore()
        // What the images hold may be removed by an rmi while this runs: a reservation keeps it.
        let holder = Holder.pending(tag: "sync-send-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        let reserved = inventory.objects.map(\.digest) + inventory.images.flatMap { $0.record.layers.map(\.diffID) }
        if !dryRun { try BlobContent.cas { try store.setRef(holder: holder, digests: reserved) } }
        defer { if !dryRun { try? store.removeRef(holder: holder) } }

        try connection.send(.offer, json: SyncOffer(objects: inventory.objects, images: inventory.images, containers: inventory.containers))
        let want = try connection.expect(.want, as: SyncWant.self)
        let byDigest = Dictionary(inventory.objects.map { ($0.digest, $0) }, uniquingKeysWith: { a, _ in a })
        var plan = [(object: SyncObject, offset: Int64)]()
        for w in want.objects {
            guard let o = byDigest[w.digest], w.offset >= 0, w.offset <= o.size else {
                throw RuntimeError.syncBadStream("the receiver asked for \(w.digest) at offset \(w.offset), which was not offered")
            }
            plan.append((o, w.offset))
        }
        progress?(.plan(objects: plan.map { ($0.object.digest, $0.object.size - $0.offset) },
                        present: inventory.objects.count - plan.count))
        if !dryRun {
            do {
                try stream(plan, store: store)
            } catch let e as RuntimeError {
                // The receiver stopped reading: its failure frame says why, if it sent one.
                if case .syncConnectionLost = e, let f = try? connection.receive(), f.type == .failure,
                   let failure = try? SyncConnection.decode(SyncFailure.self, f) {
                    throw RuntimeError.syncFarEndFailed(failure.message)
                }
                throw e
            }
        }
        try connection.send(.refs, json: SyncRefs(images: inventory.images.map(\.name), containers: inventory.containers.map(\.id)))
        return try connection.expect(.report, as: SyncResult.self)
    }

    /// Sends every planned object from its offset: a header frame, then chunks read from the blob file.
    private func stream(_ plan: [(object: SyncObject, offset: Int64)], store: Store) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: SyncProtocol.chunkSize, alignment: 4096)
        defer { buf.deallocate() }
        var midBlobArmed = Failpoint.armed(Self.midBlobFailpoint)
        for (i, item) in plan.enumerated() {
            let o = item.object
            let path = store.blobPath(o.digest)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.layerMissing("\(o.digest) (\(path): \(String(cString: strerror(errno))))") }
            defer { _ = close(fd) }
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            try connection.sendObjectHeader(o.digest, offset: UInt64(item.offset), size: UInt64(o.size))
            var position = item.offset
            while position < o.size {
                let want = min(buf.count, Int(o.size - position))
                let n = pread(fd, buf.baseAddress, want, off_t(position))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw RuntimeError.io("read", path, errno)
                }
                if n == 0 { throw RuntimeError.layerMissing("\(o.digest) (\(path) is shorter than its \(o.size) bytes)") }
                try connection.send(.chunk, UnsafeRawBufferPointer(rebasing: buf[0..<n]))
                position += Int64(n)
                progress?(.progress(index: i, bytes: position - item.offset))
                if midBlobArmed && o.size >= SyncReceiver.resumableSize && position >= o.size / 2 {
                    midBlobArmed = false
                    Failpoint.hit(Self.midBlobFailpoint)
                }
            }
            progress?(.done(index: i))
            Failpoint.hit(Self.failpointPrefix + String(i + 1))
        }
    }
}
