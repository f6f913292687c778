// login, logout and search through the udocker binary against real docker-registry instances on
// 127.0.0.1 (TLS with htpasswd; plain HTTP with catalog and tags). Never touches the internet.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import TestSupport
import Testing

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct LoginSearchTests {
    static let user = "alice"
    static let password = "Corr3ct-horse-pw"

    func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    func mode(_ path: String) -> mode_t? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    func keystoreJSON(_ path: String) -> [String: [String: String]]? {
        guard let bytes = try? FileIO.readFile(path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: [String: String]]
    }

    /// A home directory for one test and the environment pointing at it, with the registry's CA trusted.
    func home(_ r: TestRegistry) -> (dir: String, env: [String: String], keystore: String) {
        let dir = makeTempDirectory("login-home")
        return (dir, ["HOME": dir, "CURL_CA_BUNDLE": r.caFile ?? ""], dir + "/.udocker/keystore")
    }

    @Test func loginChecksStoresAndLogoutRemoves() throws {
        let r = try TestRegistry(tls: true, auth: .htpasswd(user: Self.user, password: Self.password))
        defer { r.stop() }
        let (dir, env, keystore) = home(r)
        defer { try? FileIO.removeTree(dir) }
        let secretB64 = Data("\(Self.user):\(Self.password)".utf8).base64EncodedString()

        // Wrong password: a clear message, nothing stored.
        let wrong = runUdocker(["-D", "login", "--username=\(Self.user)", "--password=wrong-pw", "--registry=\(r.url)"], env: env)
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("Error: wrong username or password for \(r.hostPort)"), "\(wrong.stderr)")
        #expect(!wrong.stderr.contains("wrong-pw") && !wrong.stdout.contains("wrong-pw"))
        #expect(!FileIO.exists(keystore))

        // Right password, with -D: stored in udocker 1.3's format, mode 0600, never shown.
        let good = runUdocker(["-D", "login", "--username=\(Self.user)", "--password=\(Self.password)", "--registry=\(r.url)"], env: env)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.contains("Info: login succeeded: credentials for \(r.hostPort) stored in \(keystore)"))
        #expect(good.stderr.contains("Debug: >   Authorization: Basic <redacted>"), "the -D output shows the request")
        for text in [good.stdout, good.stderr] {
            #expect(!text.contains(Self.password) && !text.contains(secretB64))
        }
        #expect(mode(keystore) == 0o600)
        #expect(keystoreJSON(keystore) == [r.url: ["auth": secretB64, "email": ""]])

        // A keystore others can read is refused, by login and by commands that would use it.
        #expect(chmod(keystore, 0o644) == 0)
        let open = runUdocker(["login", "--username=\(Self.user)", "--password=\(Self.password)", "--registry=\(r.url)"], env: env)
        #expect(open.status == 1)
        #expect(open.stderr.contains("Error: keystore \(keystore) has mode 0644 and is accessible to group or others"), "\(open.stderr)")
        #expect(open.stderr.contains("run 'chmod 600 \(keystore)'"))
        let tags = runUdocker(["search", "--list-tags", "--registry=\(r.url)", "any/thing"], env: env)
        #expect(tags.status == 1 && tags.stderr.contains("chmod 600"))
        #expect(!open.stderr.contains(secretB64) && !tags.stderr.contains(secretB64))
        #expect(mode(keystore) == 0o644, "left as it was")
        #expect(chmod(keystore, 0o600) == 0)

        // The stored credentials are used: tags of a private repository.
        let s = try SharedRegistry.get()
        try r.push(layout: s.layout, tag: "gzip", to: "priv/img", destTag: "v1", credentials: (Self.user, Self.password))
        let listed = runUdocker(["search", "--list-tags", "--registry=\(r.url)", "priv/img"], env: env)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout == "v1\n")
        // ... and by pull, over TLS with the CA from CURL_CA_BUNDLE.
        let pulled = runUdocker(["pull", "--registry=\(r.url)", "priv/img:v1"], env: env)
        #expect(pulled.status == 0, "\(pulled.stderr)")
        #expect(runUdocker(["images"], env: env).stdout.contains("priv/img:v1"))

        let out = runUdocker(["logout", "--registry=\(r.url)"], env: env)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(keystoreJSON(keystore) == [:])
        let anonymous = runUdocker(["search", "--list-tags", "--registry=\(r.url)", "priv/img"], env: env)
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr.contains("requires a username and password: run 'udocker login --registry=\(r.hostPort)'"), "\(anonymous.stderr)")
        let anonymousPull = runUdocker(["pull", "--registry=\(r.url)", "priv/img:v1"], env: env)
        #expect(anonymousPull.status == 1)
        #expect(anonymousPull.stderr.contains("udocker login"), "\(anonymousPull.stderr)")
        let again = runUdocker(["logout", "--registry=\(r.url)"], env: env)
        #expect(again.status == 1)
        #expect(again.stderr == "Error: no credentials stored for \(r.hostPort) in \(keystore)\n")
    }

    /// A keystore that is a symlink to another private file: login refuses, the file and the link stay.
    /// Refused before any request, so no registry is needed.
    @Test func loginRefusesAKeystoreThatIsASymlink() throws {
        let dir = makeTempDirectory("login-home")
        defer { try? FileIO.removeTree(dir) }
        try FileIO.mkdirs(dir + "/.udocker", mode: 0o700)
        let other = dir + "/notes.json"
        let text = #"{"todo": "not a keystore"}"#
        try FileIO.writeAtomically(other, Array(text.utf8))
        #expect(chmod(other, 0o600) == 0)
        let keystore = dir + "/.udocker/keystore"
        #expect(symlink(other, keystore) == 0)
        let r = runUdocker(["login", "--username=\(Self.user)", "--password=\(Self.password)", "--registry=http://127.0.0.1:9"],
                           env: ["HOME": dir])
        #expect(r.status == 1)
        #expect(r.stderr.contains("Error: keystore \(keystore) is a symbolic link"), "\(r.stderr)")
        #expect(r.stderr.contains("set UDOCKER_KEYSTORE"))
        #expect(String(decoding: try FileIO.readFile(other), as: UTF8.self) == text, "the linked file is unchanged")
        #expect(isSymlink(keystore), "the link stays")
    }

    @Test func passwordFromStdinAndLogoutAll() throws {
        let r = try TestRegistry(tls: true, auth: .htpasswd(user: Self.user, password: Self.password))
        defer { r.stop() }
        let (dir, env, keystore) = home(r)
        defer { try? FileIO.removeTree(dir) }

        let login = runUdocker(["-D", "login", "--username=\(Self.user)", "--password-stdin", "--registry=\(r.url)"],
                               env: env, stdin: Array((Self.password + "\n").utf8))
        #expect(login.status == 0, "\(login.stderr)")
        #expect(!login.stdout.contains(Self.password) && !login.stderr.contains(Self.password))
        #expect(mode(keystore) == 0o600)
        // UDOCKER_REGISTRY names the registry when --registry is not given (here with --insecure: no CA).
        let second = runUdocker(["--insecure", "login", "--username=\(Self.user)", "--password-stdin"],
                                env: ["HOME": dir, "UDOCKER_REGISTRY": "https://localhost:\(r.port)"],
                                stdin: Array(Self.password.utf8))
        #expect(second.status == 0, "\(second.stderr)")
        #expect(keystoreJSON(keystore)?.keys.sorted() == ["https://127.0.0.1:\(r.port)", "https://localhost:\(r.port)"])

        // Without the CA the certificate is not trusted, and the message says what to do.
        let untrusted = runUdocker(["login", "--username=\(Self.user)", "--password-stdin", "--registry=\(r.url)"],
                                   env: ["HOME": dir], stdin: Array(Self.password.utf8))
        #expect(untrusted.status == 1)
        #expect(untrusted.stderr.contains("TLS verification failed") && untrusted.stderr.contains("CURL_CA_BUNDLE"), "\(untrusted.stderr)")

        // Missing password off a terminal: no prompt, a clear message.
        let noPassword = runUdocker(["login", "--username=\(Self.user)", "--registry=\(r.url)"], env: env)
        #expect(noPassword.status == 1)
        #expect(noPassword.stderr.contains("Error: no password given: use --password-stdin"), "\(noPassword.stderr)")

        let all = runUdocker(["logout", "-a"], env: env)
        #expect(all.status == 0, "\(all.stderr)")
        #expect(!FileIO.exists(keystore))
        #expect(runUdocker(["logout", "-a"], env: env).status == 0)
    }

    @Test func searchTheCatalog() throws {
        let s = try SharedRegistry.get()
        let r = runUdocker(["search", "-a", "--registry=\(s.registry.url)", "busy"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // udocker 1.3's "%-55.80s %8.8s %-70.70s %5.5s".
        func pad(_ t: String, _ n: Int) -> String { t + String(repeating: " ", count: n - t.count) }
        func lpad(_ t: String, _ n: Int) -> String { String(repeating: " ", count: n - t.count) + t }
        #expect(lines.first == pad("NAME", 55) + " OFFICIAL " + pad("DESCRIPTION", 70) + " STARS")
        #expect(lines.contains(pad("test/busybox", 55) + " " + lpad("----", 8) + " " + pad("", 70) + " " + pad("", 5)))
        #expect(!r.stdout.contains("test/multi"))
        // -q leaves only the results; the registry can also come from UDOCKER_REGISTRY.
        let quiet = runUdocker(["-q", "search", "many"], env: ["UDOCKER_REGISTRY": s.registry.url])
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(quiet.stdout.hasPrefix("test/many "))
        #expect(quiet.stdout.split(separator: "\n").count == 1)
    }

    @Test func listTagsFollowsPages() throws {
        let s = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        try r.push(layout: s.layout, tag: "gzip", to: "test/pages", destTag: "base")
        // 150 more tags: more than one page of 100, pushed by PUTting the same manifest.
        let manifest = try runCommand("/usr/bin/curl", ["-sf", "-H", "Accept: application/vnd.oci.image.manifest.v1+json",
                                                        "\(r.url)/v2/test/pages/manifests/base"])
        let file = r.dir + "/manifest.json"
        try Data(manifest).write(to: URL(fileURLWithPath: file))
        let tags = (0..<150).map { String(format: "p%03d", $0) }
        try runCommand("/usr/bin/curl", ["-sf", "-X", "PUT", "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json",
                                         "--data-binary", "@" + file, "-o", "/dev/null"]
                       + tags.map { "\(r.url)/v2/test/pages/manifests/\($0)" })
        let listed = runUdocker(["-D", "search", "--list-tags", "--registry=\(r.url)", "test/pages"])
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(Set(listed.stdout.split(separator: "\n").map(String.init)) == Set(tags + ["base"]))
        #expect(listed.stdout.split(separator: "\n").count == 151)

        // docker-registry 2.8 answers all tags at once; a registry that pages (as Docker Hub does, by
        // 100) is served here by a small server honouring n and last, with Link headers.
        let many = (0..<250).map { String(format: "v%03d", $0) }
        let pager = try TinyServer { req in
            let path = req.target.split(separator: "?").first.map(String.init) ?? ""
            if path == "/v2/" { return .respond(status: 200, headers: [], body: Array("{}".utf8)) }
            guard path == "/v2/paged/repo/tags/list" else { return .respond(status: 404, headers: [], body: []) }
            let n = TokenServer.queryValues(req.target, "n").first.flatMap { Int($0) } ?? many.count
            let last = TokenServer.queryValues(req.target, "last").first
            let rest = many.filter { last == nil || $0 > last ?? "" }
            let page = Array(rest.prefix(n))
            var headers = [("Content-Type", "application/json")]
            if rest.count > page.count, let end = page.last {
                headers.append(("Link", "</v2/paged/repo/tags/list?n=\(n)&last=\(end)>; rel=\"next\""))
            }
            let body = try? JSONSerialization.data(withJSONObject: ["name": "paged/repo", "tags": page])
            return .respond(status: 200, headers: headers, body: Array(body ?? Data()))
        }
        defer { pager.stop() }
        let paged = runUdocker(["-D", "search", "--list-tags", "--registry=http://127.0.0.1:\(pager.port)", "paged/repo"])
        #expect(paged.status == 0, "\(paged.stderr)")
        #expect(paged.stdout == many.map { $0 + "\n" }.joined())
        #expect(paged.stderr.contains("> GET http://127.0.0.1:\(pager.port)/v2/paged/repo/tags/list?n=100&last=v199"))

        let missing = runUdocker(["search", "--list-tags", "--registry=\(r.url)", "test/nothing"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("not found in 127.0.0.1:\(r.port)"), "\(missing.stderr)")
    }
}
