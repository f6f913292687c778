// Push primitives against a real registry: HEAD, monolithic and chunked upload, cross-repository
// mount, manifest upload; then the pushed image is fetched back with the same digests.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

@Suite struct PushTests {
    @Test func pushThenPull() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        let src = try client(s.registry)
        let dst = try client(r)
        let pulled = try src.fetchManifest("test/busybox", reference: "oci")
        guard case .image(let m) = pulled.content else { Issue.record("not an image"); return }
        let layer = m.layers[0]
        let dir = makeTempDir("push")
        defer { removeTree(dir) }
        let sink = try FileBlobSink(path: dir + "/layer")
        try src.fetchBlob("test/busybox", digest: layer.digest, into: sink)
        let config = MemoryBlobSink()
        try src.fetchBlob("test/busybox", digest: m.config.digest, into: config)

        #expect(try dst.headBlob("up/a", digest: layer.digest) == nil)
        // Layer in chunks from the file, config in one PUT.
        try dst.uploadBlob("up/a", digest: layer.digest, body: .file(path: dir + "/layer", offset: 0, length: UInt64(layer.size)),
                           chunkSize: 700_000)
        try dst.uploadBlob("up/a", digest: m.config.digest, body: .bytes(config.bytes))
        #expect(try dst.headBlob("up/a", digest: layer.digest) == UInt64(layer.size))
        let digest = try dst.putManifest("up/a", reference: "v1", raw: pulled.raw, mediaType: pulled.mediaType)
        #expect(digest == pulled.digest)

        // Mount into another repository without uploading.
        #expect(try dst.mountBlob("up/b", digest: layer.digest, from: "up/a") == .mounted)
        #expect(try dst.mountBlob("up/b", digest: m.config.digest, from: "up/a") == .mounted)
        try dst.putManifest("up/b", reference: "v1", raw: pulled.raw, mediaType: pulled.mediaType)

        let back = try dst.fetchManifest("up/b", reference: "v1")
        #expect(back.digest == pulled.digest)
        let again = MemoryBlobSink()
        try dst.fetchBlob("up/b", digest: layer.digest, expectedSize: UInt64(layer.size), into: again)

        // A wrong digest is refused by the registry.
        do {
            try dst.uploadBlob("up/a", digest: layer.digest, body: .bytes(Array("not the layer".utf8)))
            Issue.record("wrong content accepted")
        } catch {
            #expect("\(error)".contains("rejected") || "\(error)".contains("upload"))
        }
    }
}
