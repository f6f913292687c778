// Failures a pull must survive or report: a tampered blob, a connection dropped mid-blob (resumed
// with Range), a 500 answer (retried), an unreachable registry.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct FailureTests {
    @Test func tamperedBlobIsDetected() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        try r.push(layout: s.layout, tag: "gzip", to: "t/img", destTag: "v1")
        let c = try client(r)
        guard case .image(let m) = try c.fetchManifest("t/img", reference: "v1").content else { return }
        let layer = m.layers[0]
        let path = r.blobDataPath(hex: layer.digest.hex)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count / 2] ^= 0xff
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let sink = MemoryBlobSink()
        do {
            try c.fetchBlob("t/img", digest: layer.digest, expectedSize: UInt64(layer.size), into: sink)
            Issue.record("a tampered blob was accepted")
        } catch let e as RegistryError {
            guard case .digestMismatch(_, let expected, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(expected == layer.digest)
            #expect("\(e)".contains("nothing was stored"))
        }
    }

    @Test func droppedConnectionResumesWithRange() throws {
        let s = try SharedRegistry.get()
        let c0 = try client(s.registry)
        guard case .image(let m) = try c0.fetchManifest("test/busybox", reference: "oci").content else { return }
        let layer = m.layers[0]
        let cut = LockedBox(false)
        let upstream = s.registry.port
        let proxy = try TinyServer { req in
            let first = req.target.contains("/blobs/") && req.method == "GET" && cut.update { done in
                defer { done = true }
                return !done
            }
            return .proxy(port: upstream, cutAfter: first ? 100_000 : nil)
        }
        defer { proxy.stop() }
        let c = RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(proxy.port)"),
                               http: HTTPClient(options: { var o = HTTPOptions(); o.backoffSeconds = 0.05; return o }()))
        let sink = MemoryBlobSink()
        try c.fetchBlob("test/busybox", digest: layer.digest, expectedSize: UInt64(layer.size), into: sink)
        #expect(sink.offset == UInt64(layer.size))
        let log = proxy.requestLog.get().filter { $0.contains("/blobs/") }
        #expect(log.count == 2)
        #expect(log.last?.contains("range=bytes=") == true, "\(log)")
        #expect(log.last?.contains("range=bytes=0-") == false)
    }

    @Test func serverErrorIsRetried() throws {
        let s = try SharedRegistry.get()
        let failed = LockedBox(0)
        let upstream = s.registry.port
        let proxy = try TinyServer { req in
            if req.target.contains("/manifests/") && failed.update({ n in n += 1; return n == 1 }) {
                return .respond(status: 500, headers: [], body: Array("boom".utf8))
            }
            return .proxy(port: upstream, cutAfter: nil)
        }
        defer { proxy.stop() }
        var o = HTTPOptions()
        o.backoffSeconds = 0.05
        let lines = LockedBox<[String]>([])
        o.debug = { line in lines.update { $0.append(line) } }
        let c = RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(proxy.port)"), http: HTTPClient(options: o))
        let m = try c.fetchManifest("test/busybox", reference: "oci")
        #expect(m.mediaType == MediaType.ociManifest)
        #expect(failed.get() == 2)
        #expect(lines.get().contains { $0.hasPrefix("< 500") })

        // Always 500: bounded attempts, then a clear error.
        let always = try TinyServer { _ in .respond(status: 503, headers: [], body: []) }
        defer { always.stop() }
        o.maxAttempts = 3
        let c2 = RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(always.port)"), http: HTTPClient(options: o))
        do {
            _ = try c2.fetchManifest("x/y", reference: "z")
            Issue.record("503 accepted")
        } catch {
            #expect("\(error)".contains("after 3 attempts"))
        }
        #expect(always.requestLog.get().count == 3)
    }

    @Test func aRefusedConnectionIsNotRetried() throws {
        // Nothing listens there: one attempt, with the default backoff never waited for.
        var o = HTTPOptions()
        let requests = LockedBox(0)
        o.debug = { line in if line.hasPrefix("> GET") { requests.update { $0 += 1 } } }
        let c = RegistryClient(endpoint: RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(freePort())"), http: HTTPClient(options: o))
        do {
            try c.ping()
            Issue.record("connected to nothing")
        } catch let e as RegistryError {
            guard case .transport(_, 7, let message) = e else { Issue.record("\(e)"); return }
            #expect(message.contains("connection refused"), "\(message)")
        }
        #expect(requests.get() == 1)
    }

    @Test func authorizationNotSentToAnotherHost() throws {
        // 127.0.0.1 redirects to 127.0.0.2 (another host on loopback), as registries redirect to storage.
        let seen = LockedBox<[String: String]>([:])
        let storage = try TinyServer { req in
            seen.update { $0[req.target] = req.headers["authorization"] ?? "none" }
            return .respond(status: 200, headers: [], body: Array("hello".utf8))
        }
        defer { storage.stop() }
        let front = try TinyServer { req in
            if req.headers["authorization"] == nil {
                return .respond(status: 401, headers: [("WWW-Authenticate", #"Basic realm="x""#)], body: [])
            }
            return .respond(status: 307, headers: [("Location", "http://localhost:\(storage.port)/data")], body: [])
        }
        defer { front.stop() }
        let endpoint = RegistryEndpoint(scheme: "http", host: "127.0.0.1:\(front.port)")
        let c = RegistryClient(endpoint: endpoint, auth: Authenticator(credentials: [endpoint.host: Credentials(username: "u", password: "p")]))
        let h = try SHA256Hasher()
        h.update(Array("hello".utf8))
        let sink = MemoryBlobSink()
        try c.fetchBlob("a/b", digest: h.finish(), into: sink)
        #expect(sink.bytes == Array("hello".utf8))
        #expect(seen.get()["/data"] == "none")
    }
}
