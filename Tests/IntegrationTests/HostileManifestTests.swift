// `pull` from a registry of the test's own (loopback) that serves hostile documents: an index whose
// entry is an index or names the index itself, digests of other algorithms, sizes that lie and fields
// or media types of the wrong kind. Each pull fails quickly, says why, and leaves nothing in the store.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import TestSupport
import Testing

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct HostileManifestTests {
    /// Seconds after which the test's own timer kills a pull that hangs (status 137).
    static let killAfter = 25

    static let imageType = "application/vnd.docker.distribution.manifest.v2+json"
    static let indexType = "application/vnd.oci.image.index.v1+json"
    static let configType = "application/vnd.docker.container.image.v1+json"
    static let layerType = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// A registry answering /v2/ at once, manifests from `manifests` (by tag or digest) and blobs from
    /// `blobs` (by digest); anything else is 404.
    static func registry(manifests: [String: (type: String, body: [UInt8])], blobs: [String: [UInt8]] = [:]) throws -> TinyServer {
        try TinyServer { req in
            if req.target == "/v2/" { return .respond(status: 200, headers: [], body: Array("{}".utf8)) }
            let last = String(req.target.split(separator: "/").last ?? "")
            if req.target.contains("/manifests/"), let m = manifests[last] {
                return .respond(status: 200, headers: [("Content-Type", m.type)], body: m.body)
            }
            if req.target.contains("/blobs/"), let b = blobs[last] {
                return .respond(status: 200, headers: [("Content-Length", String(b.count))], body: b)
            }
            return .respond(status: 404, headers: [], body: Array(#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.utf8))
        }
    }

    /// Pulls test/hostile:`reference` from `server` in a fresh udocker directory; returns what the user
    /// saw, how long it took and every file the store kept under blobs/ and layers/.
    static func pull(_ server: TinyServer, _ reference: String = ":latest")
        -> (status: Int32, stderr: String, seconds: Double, stored: [String], images: String) {
        let dir = makeTempDirectory("hostile-manifest")
        defer { try? FileIO.removeTree(dir) }
        let env = ["UDOCKER_DIR": dir + "/udocker"]
        let start = Date()
        let r = runUdocker(["pull", "--registry=http://127.0.0.1:\(server.port)", "test/hostile" + reference],
                           env: env, killAfter: killAfter)
        let seconds = Date().timeIntervalSince(start)
        let store = dir + "/udocker/store"
        let stored = ["blobs", "layers"].flatMap { files(under: store + "/" + $0) }
        let images = runUdocker(["images"], env: env).stdout
        return (r.status, r.stderr, seconds, stored, images)
    }

    /// Every non-directory entry below `dir`, relative to it.
    static func files(under dir: String, prefix: String = "") -> [String] {
        guard let names = try? FileIO.listDirectory(dir) else { return [] }
        return names.flatMap { n -> [String] in
            FileIO.isDirectory(dir + "/" + n) ? files(under: dir + "/" + n, prefix: prefix + n + "/") : [prefix + n]
        }
    }

    static func json(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// An index with one entry per common platform, each naming `digest` of media type `type`.
    static func index(naming digest: String, type: String, size: Int) -> [UInt8] {
        let entries = ["amd64", "arm64"].map {
            #"{"mediaType":"\#(type)","digest":"\#(digest)","size":\#(size),"platform":{"architecture":"\#($0)","os":"linux"}}"#
        }
        return json(#"{"schemaVersion":2,"mediaType":"\#(indexType)","manifests":[\#(entries.joined(separator: ","))]}"#)
    }

    /// An image manifest with `config` and `layers` as descriptor JSON.
    static func manifest(config: String, layers: [String]) -> [UInt8] {
        json(#"{"schemaVersion":2,"mediaType":"\#(imageType)","config":\#(config),"layers":[\#(layers.joined(separator: ","))]}"#)
    }

    static func descriptor(_ type: String, _ digest: String, _ size: Int) -> String {
        #"{"mediaType":"\#(type)","digest":"\#(digest)","size":\#(size)}"#
    }

    /// A real one-file layer (gzip'd tar), its config and both digests.
    static func layerAndConfig() throws -> (layer: [UInt8], layerDigest: Digest, config: [UInt8], configDigest: Digest) {
        var t = TarBuilder()
        t.file("hello", "hello\n")
        let dir = makeTempDirectory("hostile-layer")
        defer { try? FileIO.removeTree(dir) }
        try t.write(to: dir + "/layer.tar")
        let tar = try FileIO.readFile(dir + "/layer.tar")
        let layer = try runCommand("/bin/gzip", ["-c", "-n"], stdin: tar)
        let config = json(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["\#(try sha256Digest(tar))"]}}"#)
        return (layer, try sha256Digest(layer), config, try sha256Digest(config))
    }

    func expectRefusedQuickly(_ r: (status: Int32, stderr: String, seconds: Double, stored: [String], images: String),
                              saying words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, "\(r.stderr)", sourceLocation: sourceLocation)
        for w in words { #expect(r.stderr.contains(w), "expected '\(w)' in: \(r.stderr)", sourceLocation: sourceLocation) }
        #expect(r.seconds < 10, "took \(r.seconds) s", sourceLocation: sourceLocation)
        #expect(r.stored.isEmpty, "nothing is stored: \(r.stored)", sourceLocation: sourceLocation)
        #expect(!r.images.contains("test/hostile"), "no image is recorded: \(r.images)", sourceLocation: sourceLocation)
    }

    @Test func anIndexWhoseEntryIsAnIndexIsRefused() throws {
        // inner: an index naming an image that does not exist; outer: an index naming inner.
        let missing = try sha256Digest(Self.json("no such image"))
        let inner = Self.index(naming: missing.description, type: Self.imageType, size: 100)
        let innerDigest = try sha256Digest(inner).description
        let outer = Self.index(naming: innerDigest, type: Self.indexType, size: inner.count)
        let server = try Self.registry(manifests: ["latest": (Self.indexType, outer), innerDigest: (Self.indexType, inner)])
        defer { server.stop() }
        let r = Self.pull(server)
        expectRefusedQuickly(r, saying: ["Error:", "is itself an index"])
        // Only one level of index is followed: the image the inner index names is never asked for.
        #expect(!server.requestLog.get().contains { $0.contains(missing.hex) }, "\(server.requestLog.get())")
    }

    @Test func anIndexNamingItselfIsRefused() throws {
        // An index cannot hold its own digest, so a registry that wants a loop answers the entry's
        // digest with the index itself: caught as a digest mismatch, once, not followed round.
        let other = try sha256Digest(Self.json("another document")).description
        let loop = Self.index(naming: other, type: Self.indexType, size: 300)
        let loopDigest = try sha256Digest(loop).description
        let server = try Self.registry(manifests: ["latest": (Self.indexType, loop), other: (Self.indexType, loop),
                                                  loopDigest: (Self.indexType, loop)])
        defer { server.stop() }
        expectRefusedQuickly(Self.pull(server), saying: ["Error:", other])
        // By its own digest, the same.
        expectRefusedQuickly(Self.pull(server, "@" + loopDigest), saying: ["Error:", other])
        #expect(server.requestLog.get().filter { $0.contains("/manifests/") }.count <= 4, "\(server.requestLog.get())")
    }

    @Test("digests of another algorithm in a manifest are refused before any blob is asked for",
          arguments: ["sha512:" + String(repeating: "ab", count: 64), "md5:" + String(repeating: "ab", count: 16),
                      "sha256:../../../etc/passwd", "SHA256:" + String(repeating: "a", count: 64)])
    func anotherAlgorithmIsRefused(digest: String) throws {
        let (_, layerDigest, config, configDigest) = try Self.layerAndConfig()
        for m in [Self.manifest(config: Self.descriptor(Self.configType, digest, config.count),
                                layers: [Self.descriptor(Self.layerType, layerDigest.description, 100)]),
                  Self.manifest(config: Self.descriptor(Self.configType, configDigest.description, config.count),
                                layers: [Self.descriptor(Self.layerType, digest, 100)])] {
            let server = try Self.registry(manifests: ["latest": (Self.imageType, m)], blobs: [configDigest.description: config])
            defer { server.stop() }
            expectRefusedQuickly(Self.pull(server), saying: ["Error:", "digest"])
            #expect(!server.requestLog.get().contains { $0.contains("/blobs/") }, "\(server.requestLog.get())")
        }
    }

    @Test("blobs whose size is not their descriptor's are refused, naming the blob",
          arguments: ["layer smaller", "layer larger", "config larger", "config smaller"])
    func wrongSizesAreRefused(which: String) throws {
        let (layer, layerDigest, config, configDigest) = try Self.layerAndConfig()
        let layerSize = which == "layer smaller" ? layer.count - 10 : which == "layer larger" ? layer.count + 10 : layer.count
        let configSize = which == "config smaller" ? config.count - 10 : which == "config larger" ? config.count + 10 : config.count
        let m = Self.manifest(config: Self.descriptor(Self.configType, configDigest.description, configSize),
                              layers: [Self.descriptor(Self.layerType, layerDigest.description, layerSize)])
        let server = try Self.registry(manifests: ["latest": (Self.imageType, m)],
                                       blobs: [configDigest.description: config, layerDigest.description: layer])
        defer { server.stop() }
        let blob = which.hasPrefix("layer") ? layerDigest : configDigest
        let said = which.hasPrefix("layer") ? layerSize : configSize
        expectRefusedQuickly(Self.pull(server), saying: ["Error: blob \(blob) of test/hostile has", "its descriptor says \(said)"])
    }

    @Test func aNegativeSizeOrALayerMediaTypeOfNoLayerIsNotTrusted() throws {
        // A size below 0 is taken as unknown and a layer's media type does not decide how it is read:
        // the blob is still checked against its digest, and its bytes say what it is (gzip, zstd, tar).
        let (layer, layerDigest, config, configDigest) = try Self.layerAndConfig()
        let blobs = [configDigest.description: config, layerDigest.description: layer]
        for (size, type) in [(-5, Self.layerType), (layer.count, "text/html")] {
            let m = Self.manifest(config: Self.descriptor(Self.configType, configDigest.description, config.count),
                                  layers: [Self.descriptor(type, layerDigest.description, size)])
            let server = try Self.registry(manifests: ["latest": (Self.imageType, m)], blobs: blobs)
            defer { server.stop() }
            let r = Self.pull(server)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.images.contains("test/hostile:latest"), "\(r.images)")
        }
        // The same layer with other bytes behind its digest is refused, whatever its size says.
        let m = Self.manifest(config: Self.descriptor(Self.configType, configDigest.description, config.count),
                              layers: [Self.descriptor("text/html", layerDigest.description, -5)])
        let server = try Self.registry(manifests: ["latest": (Self.imageType, m)],
                                       blobs: [configDigest.description: config, layerDigest.description: Array("<html>".utf8)])
        defer { server.stop() }
        expectRefusedQuickly(Self.pull(server), saying: ["Error:", "does not match its digest"])
    }

    @Test func wrongTypesAreRefused() throws {
        let (layer, layerDigest, config, configDigest) = try Self.layerAndConfig()
        let configD = Self.descriptor(Self.configType, configDigest.description, config.count)
        let layerD = Self.descriptor(Self.layerType, layerDigest.description, layer.count)
        let blobs = [configDigest.description: config, layerDigest.description: layer]
        let cases: [(String, String, [UInt8], [String])] = [
            // A field of the wrong JSON type.
            ("field", Self.imageType, Self.json(#"{"schemaVersion":2,"mediaType":"\#(Self.imageType)","config":\#(configD),"layers":[{"mediaType":"\#(Self.layerType)","digest":"\#(layerDigest)","size":"big"}]}"#),
             ["layers[0].size", "expected a number"]),
            // layers not a list.
            ("layers", Self.imageType, Self.json(#"{"schemaVersion":2,"mediaType":"\#(Self.imageType)","config":\#(configD),"layers":\#(layerD)}"#),
             ["field 'layers': expected a list"]),
            // An index served as an image manifest, and an image manifest served as an index.
            ("index as image", Self.imageType, Self.index(naming: layerDigest.description, type: Self.imageType, size: 10),
             ["field 'config': missing"]),
            ("image as index", Self.indexType, Self.manifest(config: configD, layers: [layerD]), ["field 'manifests': missing"]),
            // The config's own fields of the wrong type.
            ("config", Self.imageType, Self.manifest(config: configD, layers: [layerD]), ["architecture"]),
        ]
        for (what, type, body, words) in cases {
            var b = blobs
            if what == "config" {
                let bad = Self.json(#"{"architecture":5,"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#)
                let d = try sha256Digest(bad).description
                b[d] = bad
                let m = Self.manifest(config: Self.descriptor(Self.configType, d, bad.count), layers: [layerD])
                let server = try Self.registry(manifests: ["latest": (type, m)], blobs: b)
                defer { server.stop() }
                let r = Self.pull(server)
                expectRefusedQuickly(r, saying: ["Error:"] + words)
                #expect(!r.stderr.contains("DecodingError"), "\(what): \(r.stderr)")
                continue
            }
            let server = try Self.registry(manifests: ["latest": (type, body)], blobs: b)
            defer { server.stop() }
            let r = Self.pull(server)
            expectRefusedQuickly(r, saying: ["Error:"] + words)
            #expect(!r.stderr.contains("DecodingError") && !r.stderr.contains("CodingKeys"), "\(what): \(r.stderr)")
        }
    }
}
