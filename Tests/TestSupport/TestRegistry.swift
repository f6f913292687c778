// Starts Debian's docker-registry on 127.0.0.1 for tests: plain HTTP, TLS (self-signed CA made with
// openssl) with htpasswd, or token auth against our TokenServer. Storage in a temp dir.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class TestRegistry: @unchecked Sendable {
    public enum Auth { case none, htpasswd(user: String, password: String), token(TokenServer) }

    public let dir: String
    public let port: UInt16
    public let tls: Bool
    public let process: Process
    /// The CA that signed the TLS certificate (when `tls`).
    public let caFile: String?

    public var url: String { (tls ? "https" : "http") + "://127.0.0.1:\(port)" }
    public var hostPort: String { "127.0.0.1:\(port)" }
    public var storage: String { dir + "/data" }

    public init(tls: Bool = false, auth: Auth = .none) throws {
        dir = makeTempDir("registry")
        port = freePort()
        self.tls = tls
        var config = """
        version: 0.1
        log:
          level: error
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(dir)/data
          delete:
            enabled: true
        compatibility:
          schema1:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)
          secret: test-secret

        """
        if tls {
            let o = "/usr/bin/openssl"
            try runCommand(o, ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key",
                               "-out", dir + "/ca.crt", "-days", "2", "-subj", "/CN=udocker test CA"])
            try runCommand(o, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/server.key",
                               "-out", dir + "/server.csr", "-subj", "/CN=127.0.0.1"])
            try writeFile(dir + "/ext.cnf", "subjectAltName=IP:127.0.0.1\n")
            try runCommand(o, ["x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey", dir + "/ca.key",
                               "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile", dir + "/ext.cnf"])
            config += """
              tls:
                certificate: \(dir)/server.crt
                key: \(dir)/server.key

            """
            caFile = dir + "/ca.crt"
        } else {
            caFile = nil
        }
        switch auth {
        case .none: break
        case .htpasswd(let user, let password):
            let line = try runCommand("/usr/bin/htpasswd", ["-Bbn", user, password])
            try Data(line).write(to: URL(fileURLWithPath: dir + "/htpasswd"))
            config += """
            auth:
              htpasswd:
                realm: udocker-test
                path: \(dir)/htpasswd

            """
        case .token(let server):
            config += """
            auth:
              token:
                realm: http://127.0.0.1:\(server.port)/token
                service: \(server.service)
                issuer: \(server.issuer)
                rootcertbundle: \(server.certFile)

            """
        }
        try writeFile(dir + "/config.yml", config)
        process = try BackgroundProcesses.start("/usr/bin/docker-registry", ["serve", dir + "/config.yml"], logPath: dir + "/registry.log")
        do { try waitForPort(port, process: process) } catch {
            let log = (try? String(contentsOfFile: dir + "/registry.log", encoding: .utf8)) ?? ""
            BackgroundProcesses.stop(process)
            throw CommandError(description: "docker-registry did not start: \(error); log: \(log)")
        }
    }

    public func stop() {
        BackgroundProcesses.stop(process)
        removeTree(dir)
    }

    /// Path of a blob's data file in the registry's storage.
    public func blobDataPath(hex: String) -> String {
        storage + "/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
    }

    /// Pushes a one-layer amd64 image of the tar at `tar` (gzip-compressed into a layout made in
    /// `work`) as `name:tag`.
    public func pushImage(tar: String, as name: String, tag: String, work: String) throws {
        let layout = work + "/layout-" + String(UInt32.random(in: 0...UInt32.max))
        let oci = try OCILayout(dir: layout)
        oci.tag(try oci.addImage(tar: tar, compression: "gzip", arch: "amd64"), as: "image")
        try oci.writeIndex()
        try push(layout: layout, tag: "image", to: name, destTag: tag)
    }

    /// Pushes an OCI layout `layoutDir:tag` to name:destTag with skopeo.
    public func push(layout: String, tag: String, to name: String, destTag: String, format: String? = nil, all: Bool = false,
              credentials: (String, String)? = nil) throws {
        var args = ["--insecure-policy", "copy", "-q", "--dest-tls-verify=false"]
        if let format { args += ["--format", format] }
        if all { args.append("--all") }
        if let credentials { args += ["--dest-creds", "\(credentials.0):\(credentials.1)"] }
        args += ["oci:\(layout):\(tag)", "docker://\(hostPort)/\(name):\(destTag)"]
        let home = makeTempDir("skopeo-home")
        defer { removeTree(home) }
        try runCommand("/usr/bin/skopeo", args, environment: ["HOME": home, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": home])
    }
}

/// Our Bearer token server: checks Basic credentials and returns a JWT (RS256, signed with openssl,
/// its certificate in x5c and in the registry's rootcertbundle) granting whatever scope was asked.
public final class TokenServer: @unchecked Sendable {
    public let service = "udocker-test-registry"
    public let issuer = "udocker-test-issuer"
    public let dir: String
    public let certFile: String
    private var server: TinyServer? = nil
    public var port: UInt16 { server?.port ?? 0 }
    public let issued = LockedBox<Int>(0)

    public init(user: String, password: String) throws {
        dir = makeTempDir("token")
        certFile = dir + "/token.crt"
        try runCommand("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/token.key",
                                            "-out", certFile, "-days", "2", "-subj", "/CN=udocker test token signer"])
        let der = try runCommand("/usr/bin/openssl", ["x509", "-in", certFile, "-outform", "DER"])
        let x5c = Data(der).base64EncodedString()
        let expected = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
        let keyFile = dir + "/token.key"
        let (service, issuer, issued) = (self.service, self.issuer, self.issued)
        server = try TinyServer { req in
            guard req.target.hasPrefix("/token") else { return .respond(status: 404, headers: [], body: []) }
            guard req.headers["authorization"] == expected else {
                return .respond(status: 401, headers: [("Content-Type", "application/json")],
                                body: Array(#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.utf8))
            }
            let scopes = TokenServer.queryValues(req.target, "scope")
            do {
                let token = try TokenServer.jwt(scopes: scopes, x5c: x5c, keyFile: keyFile, service: service, issuer: issuer)
                issued.update { $0 += 1 }
                return .respond(status: 200, headers: [("Content-Type", "application/json")],
                                body: Array(#"{"token":"\#(token)","expires_in":3600}"#.utf8))
            } catch {
                return .respond(status: 500, headers: [], body: Array("\(error)".utf8))
            }
        }
    }

    public func stop() {
        server?.stop()
        removeTree(dir)
    }

    public static func queryValues(_ target: String, _ name: String) -> [String] {
        guard let q = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return q.split(separator: "&").compactMap { kv in
            let p = kv.split(separator: "=", maxSplits: 1)
            guard p.count == 2, p[0] == name else { return nil }
            return String(p[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
    }

    public static func b64url(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func jwt(scopes: [String], x5c: String, keyFile: String, service: String, issuer: String) throws -> String {
        var access: [[String: Any]] = []
        for scope in scopes.flatMap({ $0.split(separator: " ").map(String.init) }) {
            // type:name:actions, where name may contain ':' (host:port) — split from both ends.
            let parts = scope.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 3 else { continue }
            let name = parts[1..<(parts.count - 1)].joined(separator: ":")
            access.append(["type": parts[0], "name": name, "actions": parts[parts.count - 1].split(separator: ",").map(String.init)])
        }
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["alg": "RS256", "typ": "JWT", "x5c": [x5c]]
        let claims: [String: Any] = ["iss": issuer, "sub": "tester", "aud": service, "exp": now + 3600, "nbf": now - 60,
                                     "iat": now - 60, "jti": UUID().uuidString, "access": access]
        let signingInput = b64url(try JSONSerialization.data(withJSONObject: header)) + "." +
            b64url(try JSONSerialization.data(withJSONObject: claims))
        let sig = try runCommand("/usr/bin/openssl", ["dgst", "-sha256", "-sign", keyFile], stdin: Array(signingInput.utf8))
        return signingInput + "." + b64url(Data(sig))
    }
}
