// Authentication against real registries: TLS with our CA plus htpasswd (Basic), and the Bearer token
// flow with our token server. Wrong or missing credentials give messages saying what to do.
import TestSupport
import CAS
import Foundation
import Testing
@testable import Registry

@Suite struct AuthTests {
    @Test func tlsWithBasicAuth() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry(tls: true, auth: .htpasswd(user: "alice", password: "s3cret-pw"))
        defer { r.stop() }
        try r.push(layout: s.layout, tag: "gzip", to: "priv/img", destTag: "v1", credentials: ("alice", "s3cret-pw"))

        let lines = LockedBox<[String]>([])
        var o = HTTPOptions()
        o.debug = { line in lines.update { $0.append(line) } }
        let good = try client(r, Credentials(username: "alice", password: "s3cret-pw"), options: o)
        try good.ping()
        let m = try good.fetchManifest("priv/img", reference: "v1")
        guard case .image(let im) = m.content else { Issue.record("not an image"); return }
        try good.fetchBlob("priv/img", digest: im.config.digest, expectedSize: UInt64(im.config.size), into: MemoryBlobSink())
        let debug = lines.get().joined(separator: "\n")
        #expect(debug.contains("Authorization: Basic <redacted>"))
        #expect(!debug.contains("s3cret-pw") && !debug.contains(Data("alice:s3cret-pw".utf8).base64EncodedString()))

        let wrong = try client(r, Credentials(username: "alice", password: "wrong"))
        do {
            _ = try wrong.fetchManifest("priv/img", reference: "v1")
            Issue.record("wrong password accepted")
        } catch {
            #expect("\(error)".contains("wrong username or password for 127.0.0.1:\(r.port)"))
            #expect("\(error)".contains("udocker login"))
        }
        do {
            _ = try client(r).fetchManifest("priv/img", reference: "v1")
            Issue.record("no credentials accepted")
        } catch {
            #expect("\(error)" == "127.0.0.1:\(r.port) requires a username and password: run 'udocker login --registry=127.0.0.1:\(r.port)'")
        }
        // Without our CA the certificate is not trusted; --insecure skips the check.
        let endpoint = try RegistryEndpoint(url: r.url)
        let untrusted = RegistryClient(endpoint: endpoint, http: HTTPClient(options: HTTPOptions()))
        do {
            try untrusted.ping()
            Issue.record("self-signed certificate trusted")
        } catch {
            #expect("\(error)".contains("TLS verification failed"))
        }
        var insecure = HTTPOptions()
        insecure.insecure = true
        let ins = RegistryClient(endpoint: endpoint, http: HTTPClient(options: insecure),
                                 auth: Authenticator(credentials: [endpoint.host: Credentials(username: "alice", password: "s3cret-pw")]))
        try ins.ping()
    }

    @Test func bearerTokenFlow() throws {
        let s = try SharedRegistry.get()
        let tokens = try TokenServer(user: "bob", password: "tok-pw")
        defer { tokens.stop() }
        let r = try TestRegistry(auth: .token(tokens))
        defer { r.stop() }
        try r.push(layout: s.layout, tag: "gzip", to: "team/img", destTag: "v1", credentials: ("bob", "tok-pw"))

        let lines = LockedBox<[String]>([])
        var o = HTTPOptions()
        o.debug = { line in lines.update { $0.append(line) } }
        let c = try client(r, Credentials(username: "bob", password: "tok-pw"), options: o)
        let before = tokens.issued.get()
        let m = try c.fetchManifest("team/img", reference: "v1")
        guard case .image(let im) = m.content else { Issue.record("not an image"); return }
        try c.fetchBlob("team/img", digest: im.layers[0].digest, expectedSize: UInt64(im.layers[0].size), into: MemoryBlobSink())
        #expect(try c.listTags("team/img") == ["v1"])
        // One token for the repository's pull scope, reused for the blob and the tags.
        #expect(tokens.issued.get() - before == 1)
        #expect(try c.catalog().contains("team/img"))
        let debug = lines.get().joined(separator: "\n")
        #expect(debug.contains("Authorization: Bearer <redacted>"))
        #expect(!debug.contains("eyJ"), "no token in debug output")

        let wrong = try client(r, Credentials(username: "bob", password: "nope"))
        do {
            _ = try wrong.fetchManifest("team/img", reference: "v1")
            Issue.record("wrong password accepted")
        } catch {
            #expect("\(error)".contains("wrong username or password for 127.0.0.1:\(r.port)"))
        }
    }
}
