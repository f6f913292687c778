// Against a real docker-registry (plain HTTP): manifests of each media type, platform choice,
// verified blob download, tags pagination, catalog, search fallback.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

func client(_ r: TestRegistry, _ creds: Credentials? = nil, options: HTTPOptions? = nil) throws -> RegistryClient {
    var o = options ?? HTTPOptions()
    o.caFile = r.caFile
    o.backoffSeconds = 0.05
    let endpoint = try RegistryEndpoint(url: r.url)
    return RegistryClient(endpoint: endpoint, http: HTTPClient(options: o),
                          auth: Authenticator(credentials: creds.map { [endpoint.host: $0] } ?? [:]))
}

@Suite struct PullTests {
    @Test func manifestsOfEachMediaType() throws {
        let s = try SharedRegistry.get()
        let c = try client(s.registry)
        let oci = try c.fetchManifest("test/busybox", reference: "oci")
        #expect(oci.mediaType == MediaType.ociManifest)
        guard case .image(let m) = oci.content else { Issue.record("not an image"); return }
        #expect(m.layers.map(\.mediaType) == [MediaType.ociLayerGzip])

        let docker = try c.fetchManifest("test/busybox", reference: "docker")
        #expect(docker.mediaType == MediaType.dockerManifest)
        guard case .image(let dm) = docker.content else { Issue.record("not an image"); return }
        #expect(dm.layers.map(\.mediaType) == [MediaType.dockerLayerGzip])
        #expect(dm.layers[0].digest == m.layers[0].digest, "the same gzip layer under both media types")

        let zstd = try c.fetchManifest("test/busybox", reference: "zstd")
        guard case .image(let zm) = zstd.content else { Issue.record("not an image"); return }
        #expect(zm.layers.map(\.mediaType) == [MediaType.ociLayerZstd])

        let index = try c.fetchManifest("test/multi", reference: "latest")
        #expect(index.mediaType == MediaType.ociIndex)
        guard case .index(let i) = index.content else { Issue.record("not an index"); return }
        #expect(Set(i.manifests.compactMap { $0.platform?.architecture }) == ["amd64", "arm64"])

        // By digest: the digest returned is the one asked for.
        let again = try c.fetchManifest("test/busybox", reference: oci.digest.description)
        #expect(again.raw == oci.raw)

        do {
            _ = try c.fetchManifest("test/busybox", reference: "nope")
            Issue.record("a missing tag was found")
        } catch {
            #expect("\(error)".contains("manifest test/busybox:nope not found"))
        }
    }

    @Test func platformChoiceOnRealIndex() throws {
        let s = try SharedRegistry.get()
        let c = try client(s.registry)
        let ref = try ImageReference.parse("test/multi", registryOverride: s.registry.url)
        let amd = try c.resolveImage(ref, platform: Platform(parsing: "linux/amd64"))
        let arm = try c.resolveImage(ref, platform: Platform(parsing: "linux/arm64"))
        #expect(amd.index != nil)
        #expect(amd.manifest.digest != arm.manifest.digest)
        let oci = try c.fetchManifest("test/busybox", reference: "oci")
        #expect(amd.manifest.digest == oci.digest, "amd64 entry is the busybox image")
        #expect(throws: RegistryError.self) { try c.resolveImage(ref, platform: Platform(parsing: "linux/riscv64")) }
    }

    @Test func blobFetchIsVerified() throws {
        let s = try SharedRegistry.get()
        let c = try client(s.registry)
        guard case .image(let m) = try c.fetchManifest("test/busybox", reference: "oci").content else { return }
        let layer = m.layers[0]
        let sink = MemoryBlobSink()
        let n = try c.fetchBlob("test/busybox", digest: layer.digest, expectedSize: UInt64(layer.size), into: sink)
        #expect(n == UInt64(layer.size))
        let h = try SHA256Hasher()
        h.update(sink.bytes)
        #expect(h.finish() == layer.digest)
        #expect(try c.headBlob("test/busybox", digest: layer.digest) == UInt64(layer.size))
        #expect(try c.headBlob("test/busybox", digest: Digest(parsing: "sha256:" + String(repeating: "0", count: 64))) == nil)

        // A descriptor announcing fewer bytes than the blob has is refused.
        #expect(throws: RegistryError.self) {
            try c.fetchBlob("test/busybox", digest: layer.digest, expectedSize: 10, into: MemoryBlobSink())
        }
        // A file sink that already holds a correct prefix resumes from it.
        let dir = makeTempDir("filesink")
        defer { removeTree(dir) }
        try Data(sink.bytes.prefix(1000)).write(to: URL(fileURLWithPath: dir + "/part"))
        let file = try FileBlobSink(path: dir + "/part")
        #expect(file.offset == 1000)
        try c.fetchBlob("test/busybox", digest: layer.digest, expectedSize: UInt64(layer.size), into: file)
        #expect(try SHA256Hasher.hash(fileAt: dir + "/part").0 == layer.digest)
    }

    @Test func tagsPaginationAndCatalog() throws {
        let s = try SharedRegistry.get()
        let c = try client(s.registry)
        let tags = try c.listTags("test/many", pageSize: 5)
        #expect(tags.sorted() == (0..<12).map { String(format: "t%02d", $0) })
        let catalog = try c.catalog(pageSize: 1)
        #expect(Set(catalog).isSuperset(of: ["test/busybox", "test/multi", "test/many"]))
        // docker-registry has no v1 search: search falls back to the catalog.
        let found = try c.search("mult")
        #expect(found.map(\.name) == ["test/multi"])
        do {
            _ = try c.listTags("test/absent")
            Issue.record("tags of a missing repository")
        } catch {
            #expect("\(error)".contains("not found"))
        }
    }
}
