// `pull` from a registry that stalls or floods (a server of the test's own on loopback): each request
// is bounded by a limit from udocker.conf / UDOCKER_*, and the error names the registry and the limit.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import TestSupport
import Testing

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct StallingRegistryTests {
    /// Seconds after which the test's own timer kills a pull that hangs (status 137).
    static let killAfter = 25

    static let manifestType = "application/vnd.docker.distribution.manifest.v2+json"

    /// A registry answering /v2/ at once and everything else with `other`.
    func registry(_ other: @escaping @Sendable (TinyRequest) -> TinyAction) throws -> TinyServer {
        try TinyServer { req in
            if req.target == "/v2/" { return .respond(status: 200, headers: [], body: Array("{}".utf8)) }
            return other(req)
        }
    }

    /// Pulls test/stall:latest from `server` with `env` in a fresh udocker directory.
    func pull(_ server: TinyServer, _ env: [String: String]) -> (status: Int32, stderr: String, seconds: Double) {
        let dir = makeTempDirectory("stall")
        defer { try? FileIO.removeTree(dir) }
        let start = Date()
        let r = runUdocker(["pull", "--registry=http://127.0.0.1:\(server.port)", "test/stall:latest"],
                           env: env.merging(["UDOCKER_DIR": dir + "/udocker"]) { $1 }, killAfter: Self.killAfter)
        return (r.status, r.stderr, Date().timeIntervalSince(start))
    }

    static func head(_ headers: [(String, String)], status: Int = 200) -> [UInt8] {
        Array(("HTTP/1.1 \(status) OK\r\nConnection: close\r\n" + headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n").utf8)
    }

    @Test func anEndlessManifestStopsAtTheSizeCap() throws {
        let server = try registry { _ in
            .stream { c in
                guard c.send(Self.head([("Content-Type", Self.manifestType)])) else { return }
                let chunk = [UInt8](repeating: UInt8(ascii: " "), count: 65536)
                // Until the client goes.
                while c.send(chunk) {}
            }
        }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_MAX_DOCUMENT_SIZE": "65536"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:\(server.port)/v2/test/stall/manifests/latest"), "\(r.stderr)")
        #expect(r.stderr.contains("larger than 65536 bytes") && r.stderr.contains("max_document_size"), "\(r.stderr)")
        #expect(r.seconds < 5, "took \(r.seconds) s")
    }

    @Test func aManifestOverTheDefaultCapIsTooLargeNotBadJSON() throws {
        // Valid JSON, 17 MiB of it: more than the default cap (8 MiB).
        let body = Array("{\"schemaVersion\": 2, \"x\": \"".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 17 << 20)
            + Array("\"}".utf8)
        let server = try registry { _ in
            .respond(status: 200, headers: [("Content-Type", Self.manifestType)], body: body)
        }
        defer { server.stop() }
        let r = pull(server, [:])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("larger than 8388608 bytes") && r.stderr.contains("max_document_size"), "\(r.stderr)")
        #expect(!r.stderr.contains("not JSON"), "\(r.stderr)")
        #expect(r.seconds < 10, "took \(r.seconds) s")
    }

    @Test func aTrickledManifestBodyMeetsTheTimeout() throws {
        let server = try registry { _ in
            .stream { c in
                guard c.send(Self.head([("Content-Type", Self.manifestType), ("Content-Length", "1000")])) else { return }
                // 2.5 bytes a second.
                _ = c.trickle(Array(repeating: UInt8(ascii: " "), count: 1000), interval: 0.4)
            }
        }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_TIMEOUT": "2"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:\(server.port)/v2/test/stall/manifests/latest"), "\(r.stderr)")
        #expect(r.stderr.contains("within 2 s") && r.stderr.contains("key timeout"), "\(r.stderr)")
        #expect(r.seconds < 8, "took \(r.seconds) s")
    }

    @Test func headersAtOneByteASecondMeetTheTimeout() throws {
        let server = try registry { _ in
            .stream { c in _ = c.trickle(Self.head([("Content-Type", Self.manifestType), ("Content-Length", "2")]) + Array("{}".utf8),
                                         interval: 1) }
        }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_TIMEOUT": "2"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:\(server.port)/v2/test/stall/manifests/latest"), "\(r.stderr)")
        #expect(r.stderr.contains("within 2 s") && r.stderr.contains("key timeout"), "\(r.stderr)")
        #expect(r.seconds < 8, "took \(r.seconds) s")
    }

    @Test func aStalledBlobMeetsTheProgressDeadline() throws {
        let layer = try sha256Digest(Array("layer".utf8))
        let config = Array("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"\(layer)\"]}}".utf8)
        let configDigest = try sha256Digest(config)
        let manifest = Array("""
            {"schemaVersion":2,"mediaType":"\(Self.manifestType)",\
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":\(config.count),"digest":"\(configDigest)"},\
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1000,"digest":"\(layer)"}]}
            """.utf8)
        let server = try registry { req in
            if req.target.hasSuffix("/manifests/latest") {
                return .respond(status: 200, headers: [("Content-Type", Self.manifestType)], body: manifest)
            }
            if req.target.hasSuffix("/blobs/\(configDigest)") { return .respond(status: 200, headers: [], body: config) }
            // The layer: headers, then nothing.
            return .stream { c in
                guard c.send(Self.head([("Content-Length", "1000")])) else { return }
                c.waitClosed(seconds: Double(Self.killAfter))
            }
        }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_DOWNLOAD_LOW_SPEED_TIME": "2"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:\(server.port)/v2/test/stall/blobs/\(layer)"), "\(r.stderr)")
        #expect(r.stderr.contains("less than 1000 bytes/s") && r.stderr.contains("for 2 s")
                && r.stderr.contains("key download_low_speed_time"), "\(r.stderr)")
        #expect(r.seconds < 8, "took \(r.seconds) s")
    }

    @Test func aTrickledTokenMeetsTheTimeout() throws {
        let port = LockedBox<UInt16>(0)
        let server = try TinyServer { req in
            if req.target.hasPrefix("/token") {
                return .stream { c in
                    guard c.send(Self.head([("Content-Type", "application/json"), ("Content-Length", "1000")])) else { return }
                    _ = c.trickle(Array(repeating: UInt8(ascii: " "), count: 1000), interval: 0.4)
                }
            }
            return .respond(status: 401, headers: [("WWW-Authenticate",
                "Bearer realm=\"http://127.0.0.1:\(port.get())/token\",service=\"stall\",scope=\"repository:test/stall:pull\"")],
                            body: Array("{}".utf8))
        }
        defer { server.stop() }
        port.set(server.port)
        let r = pull(server, ["UDOCKER_TIMEOUT": "2"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("http://127.0.0.1:\(server.port)/token"), "\(r.stderr)")
        #expect(r.stderr.contains("within 2 s") && r.stderr.contains("key timeout"), "\(r.stderr)")
        #expect(r.seconds < 8, "took \(r.seconds) s")
    }

    @Test func aConfigOverTheCapIsNotFetched() throws {
        let layer = try sha256Digest(Array("layer".utf8))
        let configDigest = try sha256Digest(Array("config".utf8))
        let manifest = Array("""
            {"schemaVersion":2,"mediaType":"\(Self.manifestType)",\
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":100000,"digest":"\(configDigest)"},\
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":1000,"digest":"\(layer)"}]}
            """.utf8)
        let server = try registry { req in
            if req.target.hasSuffix("/manifests/latest") {
                return .respond(status: 200, headers: [("Content-Type", Self.manifestType)], body: manifest)
            }
            return .respond(status: 200, headers: [], body: [UInt8](repeating: UInt8(ascii: " "), count: 100000))
        }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_MAX_DOCUMENT_SIZE": "65536"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("127.0.0.1:\(server.port)") && r.stderr.contains("blob \(configDigest)"), "\(r.stderr)")
        #expect(r.stderr.contains("100000 bytes, more than 65536") && r.stderr.contains("max_document_size"), "\(r.stderr)")
        #expect(!server.requestLog.get().contains { $0.contains("/blobs/") }, "\(server.requestLog.get())")
    }

    @Test func aLimitOutOfRangeIsRefused() throws {
        let server = try registry { _ in .respond(status: 404, headers: [], body: []) }
        defer { server.stop() }
        let r = pull(server, ["UDOCKER_TIMEOUT": "0"])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("timeout") && r.stderr.contains("from 1 to 86400"), "\(r.stderr)")
    }
}
