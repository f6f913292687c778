// ImagePuller against a real docker-registry into a real store: each manifest kind, platform choice,
// tampered blobs, dropped connections, 500s, repeated pulls, diff_id checks, parallel layers, schema 1.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

/// A store in a fresh temp dir, removed (read-only layers included) at deinit.
final class TempStore {
    let dir: String
    let store: Store
    init() throws {
        dir = makeTempDir("pullstore")
        store = try Store.create(at: dir + "/store")
    }
    deinit { try? FileIO.removeTree(dir) }

    var blobFiles: [String] {
        let b = store.layout.blobsDir
        return ((try? FileIO.listDirectory(b)) ?? []).flatMap { p in
            ((try? FileIO.listDirectory(b + "/" + p)) ?? []).filter { !$0.contains(".") }
        }.sorted()
    }
    var layerDirs: [String] { ((try? FileIO.listDirectory(store.layout.layersDir)) ?? []).sorted() }
}

func puller(_ r: TestRegistry, _ s: TempStore) throws -> ImagePuller {
    ImagePuller(client: try client(r), store: s.store)
}

func puller(port: UInt16, _ s: TempStore) -> ImagePuller {
    puller(port: port, store: s.store)
}

func puller(port: UInt16, store: Store) -> ImagePuller {
    var o = HTTPOptions()
    o.backoffSeconds = 0.05
    return ImagePuller(client: RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(port)"),
                                              http: HTTPClient(options: o)), store: store)
}

func ref(_ r: TestRegistry, _ name: String) throws -> ImageReference {
    try ImageReference.parse(name, registryOverride: r.url)
}

let amd64 = Platform(os: "linux", architecture: "amd64")

/// Collects progress events from the download threads.
final class EventLog: @unchecked Sendable {
    private let box = LockedBox<[PullEvent]>([])
    var events: [PullEvent] { box.get() }
    var handler: @Sendable (PullEvent) -> Void { { [box] e in box.update { $0.append(e) } } }
}

@Suite struct ImagePullTests {
    @Test func pullsOCIDockerAndZstdImages() throws {
        let s = try SharedRegistry.get()
        let t = try TempStore()
        let p = try puller(s.registry, t)
        var committed: PulledImage? = nil
        let oci = try p.pull(try ref(s.registry, "test/busybox:oci"), options: PullOptions(platform: amd64)) { committed = $0 }
        #expect(committed == oci)
        #expect(oci.manifestMediaType == MediaType.ociManifest)
        #expect(oci.layers.count == 1)
        #expect(oci.layersDownloaded == 1)
        #expect(oci.platform.architecture == "amd64")
        let layer = try #require(try t.store.layer(diffID: oci.layers[0].diffID))
        #expect(layer.entries.contains { $0.path == "bin/busybox" && $0.kind == .file })
        for d in [oci.manifestDigest, oci.configDigest, oci.layers[0].digest] { #expect(t.store.hasBlob(d)) }
        // The pending reservation is gone once the pull returns.
        #expect(try t.store.refs().isEmpty)

        // Docker v2s2 with the same layer blob: nothing to download.
        let docker = try p.pull(try ref(s.registry, "test/busybox:docker")) { _ in }
        #expect(docker.manifestMediaType == MediaType.dockerManifest)
        #expect(docker.layers[0].mediaType == MediaType.dockerLayerGzip)
        #expect(docker.layersDownloaded == 0)
        #expect(docker.layers[0].diffID == oci.layers[0].diffID)

        // zstd: another blob, the same unpacked layer (diff_id).
        let zstd = try p.pull(try ref(s.registry, "test/busybox:zstd")) { _ in }
        #expect(zstd.layers[0].mediaType == MediaType.ociLayerZstd)
        #expect(zstd.layers[0].digest != oci.layers[0].digest)
        #expect(zstd.layers[0].diffID == oci.layers[0].diffID)
        #expect(zstd.layersDownloaded == 1)
        #expect(t.layerDirs.count == 1)
        #expect(try t.store.layer(diffID: oci.layers[0].diffID)?.blobs.count == 2)
    }

    @Test func multiArchIndexChoosesPlatform() throws {
        let s = try SharedRegistry.get()
        let t = try TempStore()
        let p = try puller(s.registry, t)
        let arm = try p.pull(try ref(s.registry, "test/multi"), options: PullOptions(platform: Platform(parsing: "linux/arm64"))) { _ in }
        #expect(arm.indexDigest != nil)
        #expect(arm.platform.architecture == "arm64")
        let armLayer = try #require(try t.store.layer(diffID: arm.layers[0].diffID))
        #expect(armLayer.entries.contains { $0.path == "etc/arch" })
        #expect(t.store.hasBlob(try #require(arm.indexDigest)))

        let a = try p.pull(try ref(s.registry, "test/multi"), options: PullOptions(platform: amd64)) { _ in }
        #expect(a.platform.architecture == "amd64")
        #expect(a.indexDigest == arm.indexDigest)
        #expect(a.manifestDigest != arm.manifestDigest)

        #expect(throws: RegistryError.self) {
            try p.pull(try ref(s.registry, "test/multi"), options: PullOptions(platform: Platform(parsing: "linux/s390x"))) { _ in }
        }
    }

    @Test func tamperedBlobFailsAndLeavesStoreUnchanged() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        try r.push(layout: s.layout, tag: "gzip", to: "t/img", destTag: "v1")
        guard case .image(let m) = try client(r).fetchManifest("t/img", reference: "v1").content else {
            Issue.record("not an image"); return
        }
        let path = r.blobDataPath(hex: m.layers[0].digest.hex)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let t = try TempStore()
        var committed = false
        do {
            try puller(r, t).pull(try ref(r, "t/img:v1")) { _ in committed = true }
            Issue.record("a tampered blob was accepted")
        } catch let e as RegistryError {
            guard case .digestMismatch(let what, let expected, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(expected == m.layers[0].digest)
            #expect(what.contains("t/img"))
            #expect("\(e)".contains("nothing was stored"))
        }
        #expect(!committed)
        #expect(t.blobFiles.isEmpty, "no blob of the failed pull is in the store")
        #expect(t.layerDirs.isEmpty)
        #expect(try t.store.refs().isEmpty)
        #expect(((try? FileIO.listDirectory(t.store.layout.tmpDir)) ?? []).isEmpty, "no temp file left")
    }

    @Test func droppedConnectionMidLayerResumes() throws {
        let s = try SharedRegistry.get()
        guard case .image(let m) = try client(s.registry).fetchManifest("test/busybox", reference: "oci").content else { return }
        let layerPath = "/blobs/\(m.layers[0].digest)"
        let cut = LockedBox(false)
        let upstream = s.registry.port
        let proxy = try TinyServer { req in
            let first = req.target.contains(layerPath) && req.method == "GET" && cut.update { done in
                defer { done = true }
                return !done
            }
            return .proxy(port: upstream, cutAfter: first ? 100_000 : nil)
        }
        defer { proxy.stop() }
        let t = try TempStore()
        let pulled = try puller(port: proxy.port, t).pull(try ImageReference.parse("127.0.0.1:\(proxy.port)/test/busybox:oci")) { _ in }
        #expect(pulled.layersDownloaded == 1)
        let log = proxy.requestLog.get().filter { $0.contains("/blobs/\(pulled.layers[0].digest)") }
        #expect(log.contains { $0.contains("range=bytes=") && !$0.contains("range=bytes=0-") }, "\(proxy.requestLog.get())")
        #expect(try t.store.verify(blob: pulled.layers[0].digest).problems.isEmpty)
    }

    @Test func rangeIgnoredMidLayerStartsOverAndUnpacksTheVerifiedBlob() throws {
        // The layer is unpacked while it downloads; a server that answers the resumed request with
        // the whole blob makes that stream useless, so the layer comes from the committed blob.
        let s = try SharedRegistry.get()
        guard case .image(let m) = try client(s.registry).fetchManifest("test/busybox", reference: "oci").content else { return }
        let layer = m.layers[0]
        let whole = [UInt8](try Data(contentsOf: URL(fileURLWithPath: s.registry.blobDataPath(hex: layer.digest.hex))))
        #expect(whole.count > 200_000, "the test needs a layer larger than the cut")
        let requests = LockedBox(0)
        let upstream = s.registry.port
        let proxy = try TinyServer { req in
            guard req.target.contains("/blobs/\(layer.digest)") && req.method == "GET" else {
                return .proxy(port: upstream, cutAfter: nil)
            }
            if requests.update({ n in n += 1; return n }) == 1 { return .proxy(port: upstream, cutAfter: 100_000) }
            return .respond(status: 200, headers: [("Content-Type", "application/octet-stream")], body: whole)
        }
        defer { proxy.stop() }
        let t = try TempStore()
        let pulled = try puller(port: proxy.port, t).pull(try ImageReference.parse("127.0.0.1:\(proxy.port)/test/busybox:oci")) { _ in }
        #expect(requests.get() == 2)
        #expect(pulled.layersDownloaded == 1)
        #expect(try t.store.verify(blob: layer.digest).problems.isEmpty)
        let unpacked = try #require(try t.store.layer(diffID: pulled.layers[0].diffID))
        #expect(unpacked.blobs == [layer.digest])
        #expect(try t.store.verify(layer: pulled.layers[0].diffID).problems.isEmpty)
        #expect(((try? FileIO.listDirectory(t.store.layout.tmpDir)) ?? []).isEmpty, "no temp file left")
    }

    @Test func concurrentPullsOfOneImageIntoOneStoreKeepOneCopy() throws {
        // Each puller opens the store itself, as separate processes would. The store's claim on each
        // layer lets one of them download and unpack it; the others wait and find it in the store.
        let s = try SharedRegistry.get()
        let t = try TempStore()
        let root = t.store.layout.root
        let ref = try ImageReference.parse("127.0.0.1:\(s.registry.port)/test/busybox:oci")
        let results = LockedBox<[Result<PulledImage, any Error>]>([])
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread {
                defer { group.leave() }
                let r = Result {
                    try puller(port: s.registry.port, store: try Store.create(at: root)).pull(ref) { _ in }
                }
                results.update { $0.append(r) }
            }.start()
        }
        group.wait()
        let pulled = try results.get().map { try $0.get() }
        #expect(pulled.count == 4)
        #expect(Set(pulled.map(\.manifestDigest)).count == 1)
        let diffIDs = Set(pulled.flatMap { $0.layers.map(\.diffID.hex) })
        #expect(Set(t.layerDirs) == diffIDs, "one unpacked layer per diff_id")
        #expect(pulled.map(\.layersDownloaded).reduce(0, +) == pulled[0].layers.count, "each layer downloaded once")
        let report = try t.store.verify(repair: false)
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(((try? FileIO.listDirectory(t.store.layout.tmpDir)) ?? []).isEmpty, "no temp file left")
    }

    @Test func serverErrorIsRetriedAndSecondPullDownloadsNothing() throws {
        let s = try SharedRegistry.get()
        let failed = LockedBox(0)
        let upstream = s.registry.port
        let proxy = try TinyServer { req in
            if req.target.contains("/blobs/") && failed.update({ n in n += 1; return n == 1 }) {
                return .respond(status: 500, headers: [], body: Array("boom".utf8))
            }
            return .proxy(port: upstream, cutAfter: nil)
        }
        defer { proxy.stop() }
        let t = try TempStore()
        let p = puller(port: proxy.port, t)
        let r = try ImageReference.parse("127.0.0.1:\(proxy.port)/test/busybox:docker")
        let first = try p.pull(r) { _ in }
        #expect(first.layersDownloaded == 1)
        #expect(failed.get() >= 2)

        let before = proxy.requestLog.get().count
        let events = EventLog()
        let second = try p.pull(r, options: PullOptions(progress: events.handler)) { _ in }
        #expect(second.layersDownloaded == 0)
        #expect(second.bytesDownloaded == 0)
        let after = Array(proxy.requestLog.get()[before...])
        #expect(!after.contains { $0.contains("/blobs/") }, "second pull fetched blobs: \(after)")
        #expect(events.events.contains { if case .layerDone(_, _, _, false) = $0 { return true }; return false })
    }

    @Test func multiLayerImageInParallelAndDiffIDMismatch() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        let work = makeTempDir("layers")
        defer { removeTree(work) }
        let oci = try OCILayout(dir: work + "/layout")
        var layers: [[String: Any]] = []
        var diffIDs: [String] = []
        for i in 0..<4 {
            try FileManager.default.createDirectory(atPath: work + "/l\(i)/d\(i)", withIntermediateDirectories: true)
            try writeFile(work + "/l\(i)/d\(i)/file", String(repeating: "layer \(i)\n", count: 1000 * (i + 1)))
            try runCommand("/bin/tar", ["-C", work + "/l\(i)", "-cf", work + "/l\(i).tar", "d\(i)"])
            diffIDs.append(try SHA256Hasher.hash(fileAt: work + "/l\(i).tar").0.description)
            let gz = try runCommand("/bin/gzip", ["-n", "-c", work + "/l\(i).tar"])
            let (d, n) = try oci.addBlob(gz)
            layers.append(["mediaType": MediaTypeNames.ociGzip, "digest": d.description, "size": n])
        }
        func image(_ ids: [String], tag: String) throws {
            let config: [String: Any] = ["architecture": "amd64", "os": "linux", "rootfs": ["type": "layers", "diff_ids": ids]]
            let (cd, cs) = try oci.addBlob(Array(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])))
            let manifest: [String: Any] = [
                "schemaVersion": 2, "mediaType": MediaTypeNames.ociManifest,
                "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.description, "size": cs],
                "layers": layers]
            let (md, ms) = try oci.addBlob(Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])))
            oci.tag(["mediaType": MediaTypeNames.ociManifest, "digest": md.description, "size": ms], as: tag)
        }
        try image(diffIDs, tag: "good")
        try image([diffIDs[0], diffIDs[2], diffIDs[1], diffIDs[3]], tag: "bad")
        try oci.writeIndex()
        try r.push(layout: oci.dir, tag: "good", to: "t/layers", destTag: "good")
        try r.push(layout: oci.dir, tag: "bad", to: "t/layers", destTag: "bad")
        _ = s

        let t = try TempStore()
        let events = EventLog()
        let good = try puller(r, t).pull(try ref(r, "t/layers:good"), options: PullOptions(parallel: 3, progress: events.handler)) { _ in }
        #expect(good.layers.map(\.diffID.description) == diffIDs)
        #expect(good.layersDownloaded == 4)
        let done = events.events.compactMap { e -> Int? in if case .layerDone(let i, _, _, true) = e { return i }; return nil }
        #expect(done.sorted() == [0, 1, 2, 3])
        #expect(events.events.first.map { if case .plan = $0 { return true }; return false } == true)

        // Layers unpack to diff_ids in another order than the config lists: an error, nothing recorded.
        let t2 = try TempStore()
        var committed = false
        do {
            try puller(r, t2).pull(try ref(r, "t/layers:bad"), options: PullOptions(parallel: 1)) { _ in committed = true }
            Issue.record("a diff_id mismatch was accepted")
        } catch let e as RegistryError {
            guard case .diffIDMismatch = e else { Issue.record("wrong error \(e)"); return }
            #expect("\(e)".contains("not recorded"))
        }
        #expect(!committed)
        #expect(try t2.store.refs().isEmpty)
    }

    @Test func schema1ManifestIsReadAsLegacy() throws {
        let s = try SharedRegistry.get()
        guard case .image(let m) = try client(s.registry).fetchManifest("test/busybox", reference: "oci").content else { return }
        let config = try client(s.registry)
        let cfgSink = MemoryBlobSink()
        try config.fetchBlob("test/busybox", digest: m.config.digest, into: cfgSink)
        let expectedDiffIDs = try ImageConfigSummary.parse(cfgSink.bytes).diffIDs
        let v1top = #"{"id":"b","parent":"a","architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"container_config":{"Cmd":["/bin/sh -c #(nop) CMD"]}}"#
        let v1base = #"{"id":"a","created":"2020-01-01T00:00:00Z","container_config":{"Cmd":["/bin/sh -c #(nop) ADD file"]}}"#
        let manifest: [String: Any] = [
            "schemaVersion": 1, "name": "test/busybox", "tag": "v1", "architecture": "amd64",
            "fsLayers": [["blobSum": m.layers[0].digest.description], ["blobSum": m.layers[0].digest.description]],
            "history": [["v1Compatibility": v1top.replacingOccurrences(of: "\"os\"", with: "\"throwaway\":true,\"os\"")],
                        ["v1Compatibility": v1base]]]
        let body = Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]))
        let upstream = s.registry.port
        let server = try TinyServer { req in
            if req.target.contains("/manifests/") {
                return .respond(status: 200, headers: [("Content-Type", MediaType.dockerSchema1)], body: body)
            }
            return .proxy(port: upstream, cutAfter: nil)
        }
        defer { server.stop() }
        let t = try TempStore()
        let pulled = try puller(port: server.port, t).pull(try ImageReference.parse("127.0.0.1:\(server.port)/test/busybox:v1")) { _ in }
        #expect(pulled.manifestMediaType == MediaType.dockerSchema1)
        #expect(pulled.layers.count == 1, "the throwaway entry is not a layer")
        #expect(pulled.layers.map(\.diffID) == expectedDiffIDs)
        let synthesized = try FileIO.readFile(t.store.blobPath(pulled.configDigest))
        let summary = try ImageConfigSummary.parse(synthesized)
        #expect(summary.diffIDs == expectedDiffIDs)
        #expect(summary.platform.architecture == "amd64")
        #expect(t.store.hasBlob(pulled.manifestDigest))
    }
}
