// ImagePusher from a real store to a real docker-registry: chunked and parallel uploads with progress,
// blobs the registry has are skipped, a corrupted store blob is refused by the registry and leaves
// no tag, a registry naming another digest is caught, schema 1 images are refused.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

/// Collects push progress events from the upload threads.
final class PushEventLog: @unchecked Sendable {
    private let box = LockedBox<[PushEvent]>([])
    var events: [PushEvent] { box.get() }
    var handler: @Sendable (PushEvent) -> Void { { [box] e in box.update { $0.append(e) } } }
}

@Suite struct ImagePushTests {
    /// A store holding test/busybox:oci and :zstd pulled from the shared registry.
    func pulledStore() throws -> (TempStore, oci: PulledImage, zstd: PulledImage) {
        let s = try SharedRegistry.get()
        let t = try TempStore()
        let p = try puller(s.registry, t)
        let oci = try p.pull(try ref(s.registry, "test/busybox:oci"), options: PullOptions(platform: amd64)) { _ in }
        let zstd = try p.pull(try ref(s.registry, "test/busybox:zstd"), options: PullOptions(platform: amd64)) { _ in }
        return (t, oci, zstd)
    }

    @Test func chunkedParallelUploadsThenOnlyWhatIsMissing() throws {
        let (t, oci, zstd) = try pulledStore()
        let r = try TestRegistry()
        defer { r.stop() }
        let pusher = ImagePusher(client: try client(r), store: t.store)
        let log = PushEventLog()
        let layerSize = UInt64(oci.layers[0].size)
        #expect(layerSize > 200_000, "the busybox layer is big enough for several chunks")
        let pushed = try pusher.push(manifest: oci.manifestDigest, mediaType: oci.manifestMediaType,
                                     to: try ref(r, "copy/busybox:one"),
                                     options: PushOptions(parallel: 2, chunkSize: 64 << 10, progress: log.handler))
        #expect(pushed.manifestDigest == oci.manifestDigest)
        #expect(pushed.blobs.map(\.digest) == [oci.layers[0].digest, oci.configDigest])
        #expect(pushed.blobs.map(\.outcome) == [.uploaded, .uploaded])
        #expect(pushed.bytesUploaded == layerSize + (try #require(try t.store.blobRecord(oci.configDigest))).size)
        // One progress event per 64 KiB chunk of the layer, the last one at its full size.
        let sent = log.events.compactMap { e -> UInt64? in
            if case .blobProgress(0, let n) = e { return n } else { return nil }
        }
        #expect(sent.count >= Int(layerSize / (64 << 10)), "\(sent.count) progress events")
        #expect(sent.last == layerSize)
        #expect(log.events.filter { if case .blobDone = $0 { return true } else { return false } }.count == 2)

        // The registry serves the same manifest bytes and blobs.
        let back = try client(r).fetchManifest("copy/busybox", reference: "one")
        #expect(back.digest == oci.manifestDigest)
        #expect(back.raw == (try FileIO.readFile(t.store.blobPath(oci.manifestDigest))))
        let sink = MemoryBlobSink()
        try client(r).fetchBlob("copy/busybox", digest: oci.layers[0].digest, expectedSize: layerSize, into: sink)

        // The zstd image has the same config: only its layer goes up.
        let second = try pusher.push(manifest: zstd.manifestDigest, mediaType: zstd.manifestMediaType,
                                     to: try ref(r, "copy/busybox:two"), options: PushOptions())
        #expect(second.blobs.map(\.outcome) == [.uploaded, .existed])
        #expect(try client(r).fetchManifest("copy/busybox", reference: "two").digest == zstd.manifestDigest)

        // By digest: accepted when it is the image's, refused otherwise.
        let byDigest = try pusher.push(manifest: oci.manifestDigest, mediaType: oci.manifestMediaType,
                                       to: try ref(r, "copy/busybox@\(oci.manifestDigest)"))
        #expect(byDigest.existed == 2)
        #expect(throws: RegistryError.cannotPush("the destination names digest \(zstd.manifestDigest), but the image's manifest is \(oci.manifestDigest)")) {
            try pusher.push(manifest: oci.manifestDigest, mediaType: oci.manifestMediaType,
                            to: try ref(r, "copy/busybox@\(zstd.manifestDigest)"))
        }
        #expect(try t.store.refs().keys.allSatisfy { !$0.hasPrefix("pending/") }, "no pending ref is left")
    }

    @Test func corruptStoreBlobIsRefusedAndNothingIsTagged() throws {
        let (t, oci, _) = try pulledStore()
        let r = try TestRegistry()
        defer { r.stop() }
        let path = t.store.blobPath(oci.layers[0].digest)
        #expect(chmod(path, 0o644) == 0)
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0)
        #expect(pwrite(fd, "X", 1, 100) == 1)
        close(fd)
        do {
            try ImagePusher(client: try client(r), store: t.store)
                .push(manifest: oci.manifestDigest, mediaType: oci.manifestMediaType, to: try ref(r, "bad/img:v1"))
            Issue.record("a corrupt blob was pushed")
        } catch let e as RegistryError {
            #expect("\(e)".hasPrefix("upload failed: the registry rejected blob \(oci.layers[0].digest)"), "\(e)")
        }
        #expect(throws: RegistryError.self) { try client(r).fetchManifest("bad/img", reference: "v1") }
    }

    @Test func registryReportingAnotherDigestIsCaught() throws {
        let (t, oci, _) = try pulledStore()
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        let server = try TinyServer { req in
            switch req.method {
            case "HEAD": return .respond(status: 404, headers: [], body: [])
            case "POST": return .respond(status: 202, headers: [("Location", "/v2/x/img/blobs/uploads/u1")], body: [])
            default: return .respond(status: 201, headers: [("Docker-Content-Digest", wrong)], body: [])
            }
        }
        defer { server.stop() }
        let pusher = ImagePusher(client: RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(server.port)")),
                                 store: t.store)
        do {
            try pusher.push(manifest: oci.manifestDigest, mediaType: oci.manifestMediaType,
                            to: try ImageReference.parse("127.0.0.1:\(server.port)/x/img:v1"), options: PushOptions(parallel: 1))
            Issue.record("a wrong registry digest was accepted")
        } catch let e as RegistryError {
            guard case .uploadDigestMismatch(_, _, let registry) = e else { Issue.record("\(e)"); return }
            #expect(registry.description == wrong)
            #expect("\(e)".contains("the image was not tagged there"))
        }
        #expect(server.requestLog.get().allSatisfy { !$0.contains("/manifests/") }, "no manifest was sent")
    }

    @Test func schema1ImagesAreRefused() throws {
        let t = try TempStore()
        let raw = Array(#"{"schemaVersion":1,"name":"a/b","tag":"v1","architecture":"amd64","fsLayers":[],"history":[]}"#.utf8)
        let record = try t.store.ingest(bytes: raw, mediaType: MediaType.dockerSchema1)
        let pusher = ImagePusher(client: RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:9")), store: t.store)
        do {
            try pusher.push(manifest: record.digest, mediaType: MediaType.dockerSchema1, to: try ImageReference.parse("127.0.0.1:9/a/b:v1"))
            Issue.record("schema 1 pushed")
        } catch let e as RegistryError {
            #expect("\(e)".hasPrefix("cannot push: the image has a Docker schema 1 manifest"), "\(e)")
        }
    }
}
