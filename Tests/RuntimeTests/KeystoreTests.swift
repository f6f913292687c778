// The keystore: udocker 1.3's file format both ways, mode 0600, refusal of a file others can read,
// delete and delete-all, and credentials that never print their password.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import Registry
import Testing
@testable import Runtime

@Suite struct KeystoreTests {
    func isSymlink(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    @Test func storeReadDeleteInUdockerFormat() throws {
        let t = TempDir("keystore")
        // The keystore's directory does not exist yet: it is made private.
        let k = Keystore(path: t.path + "/home/.udocker/keystore")
        let local = try RegistryEndpoint(url: "https://127.0.0.1:5000")
        #expect(try k.credentials(for: local) == nil)
        try k.store(Credentials(username: "alice", password: "pa:ss wörd"), for: local)
        #expect(mode(k.path) == 0o600)
        #expect(mode(t.path + "/home/.udocker") == 0o700)
        #expect(try k.credentials(for: "127.0.0.1:5000") == Credentials(username: "alice", password: "pa:ss wörd"))

        // udocker 1.3's layout: registry URL -> {"auth": base64(user:password), "email": ""}.
        let json = try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(k.path))) as? [String: [String: String]]
        #expect(json == ["https://127.0.0.1:5000": ["auth": Data("alice:pa:ss wörd".utf8).base64EncodedString(), "email": ""]])

        try k.store(Credentials(username: "bob", password: "hub-pw"), for: .dockerHub)
        #expect(try k.credentials(for: "docker.io")?.username == "bob")
        #expect(try k.allCredentials().keys.sorted() == ["127.0.0.1:5000", "registry-1.docker.io"])
        // Logging in again replaces the entry.
        try k.store(Credentials(username: "alice", password: "new"), for: local)
        #expect(try k.credentials(for: local)?.password == "new")
        #expect(mode(k.path) == 0o600)

        #expect(try k.delete(for: local))
        #expect(try k.credentials(for: local) == nil)
        #expect(try k.credentials(for: .dockerHub)?.username == "bob")
        #expect(try !k.delete(for: local), "nothing left to delete")
        #expect(try k.deleteAll())
        #expect(!FileIO.exists(k.path))
        #expect(try !k.deleteAll())
    }

    @Test func readsAKeystoreWrittenByUdocker() throws {
        let t = TempDir("keystore")
        // As udocker 1.3 writes it: its registry URL spelling, another registry, json.dump's spacing.
        let auth = Data("carol:c-pw".utf8).base64EncodedString()
        let file = try t.write("keystore", #"{"https://registry-1.docker.io": {"auth": "\#(auth)", "email": ""}, "https://quay.io/": {"auth": "\#(Data("q:q".utf8).base64EncodedString())", "email": ""}}"#)
        #expect(chmod(file, 0o600) == 0)
        let k = Keystore(path: file)
        #expect(try k.credentials(for: "index.docker.io") == Credentials(username: "carol", password: "c-pw"))
        #expect(try k.credentials(for: "https://quay.io")?.username == "q")
        // Storing for quay.io replaces udocker's differently spelt key; the other entry stays.
        try k.store(Credentials(username: "q2", password: "q2"), for: try RegistryEndpoint(url: "quay.io"))
        let json = try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(file))) as? [String: Any]
        #expect(json?.keys.sorted() == ["https://quay.io", "https://registry-1.docker.io"])
        // udocker blanks the file with spaces before rewriting it; a blank keystore is an empty one.
        let blank = try t.write("blank", "      ")
        #expect(chmod(blank, 0o600) == 0)
        #expect(try Keystore(path: blank).credentials(for: .dockerHub) == nil)
    }

    @Test func refusesAKeystoreOthersCanRead() throws {
        let t = TempDir("keystore")
        let k = Keystore(path: t.path + "/keystore")
        try k.store(Credentials(username: "alice", password: "secret-1"), for: .dockerHub)
        #expect(chmod(k.path, 0o644) == 0)
        for attempt in [{ _ = try k.credentials(for: .dockerHub) },
                        { try k.store(Credentials(username: "a", password: "b"), for: .dockerHub) },
                        { _ = try k.delete(for: .dockerHub) },
                        { _ = try k.deleteAll() }] as [() throws -> Void] {
            do {
                try attempt()
                Issue.record("a keystore of mode 0644 was used")
            } catch {
                #expect("\(error)".contains("keystore \(k.path) has mode 0644 and is accessible to group or others"))
                #expect("\(error)".contains("run 'chmod 600 \(k.path)'"))
                #expect(!"\(error)".contains("secret-1"))
            }
        }
        #expect(mode(k.path) == 0o644, "the refused file is left alone")
        #expect(chmod(k.path, 0o600) == 0)
        #expect(try k.credentials(for: .dockerHub)?.password == "secret-1")

        let corrupt = try t.write("corrupt", "{not json")
        #expect(chmod(corrupt, 0o600) == 0)
        #expect(throws: KeystoreError.unreadable(path: corrupt, reason: "not a JSON object")) {
            try Keystore(path: corrupt).credentials(for: .dockerHub)
        }
    }

    @Test func refusesAKeystoreThatIsASymlinkOrInAnOpenDirectory() throws {
        let t = TempDir("keystore")
        // A keystore that is a link to another private file of the user's: that file must survive a login.
        let other = try t.write("other.json", #"{"mine": "keep me"}"#)
        #expect(chmod(other, 0o600) == 0)
        let link = t.path + "/keystore"
        #expect(symlink(other, link) == 0)
        let k = Keystore(path: link)
        for attempt in [{ _ = try k.credentials(for: .dockerHub) },
                        { try k.store(Credentials(username: "a", password: "b"), for: .dockerHub) },
                        { _ = try k.delete(for: .dockerHub) },
                        { _ = try k.deleteAll() }] as [() throws -> Void] {
            #expect(throws: KeystoreError.symlink(link)) { try attempt() }
        }
        #expect(try t.read("other.json") == #"{"mine": "keep me"}"#)
        #expect(isSymlink(link), "the link is left alone")
        #expect("\(KeystoreError.symlink(link))".contains("keystore \(link) is a symbolic link"))
        #expect("\(KeystoreError.symlink(link))".contains("set UDOCKER_KEYSTORE"))

        // A keystore in a directory others can write (another user could rename a file over it).
        let shared = t.path + "/shared"
        try FileIO.mkdirs(shared)
        let inShared = Keystore(path: shared + "/keystore")
        try inShared.store(Credentials(username: "alice", password: "pw"), for: .dockerHub)
        #expect(chmod(shared, 0o777) == 0)
        for attempt in [{ _ = try inShared.credentials(for: .dockerHub) },
                        { try inShared.store(Credentials(username: "a", password: "b"), for: .dockerHub) }] as [() throws -> Void] {
            #expect(throws: KeystoreError.openDirectory(path: inShared.path, directory: shared, mode: 0o777)) { try attempt() }
        }
        #expect("\(KeystoreError.openDirectory(path: inShared.path, directory: shared, mode: 0o777))".contains("run 'chmod go-w \(shared)'"))
        // No keystore there at all is simply no credentials (pull and search go on without them).
        #expect(try Keystore(path: shared + "/none").credentials(for: .dockerHub) == nil)
        #expect(chmod(shared, 0o700) == 0)
        #expect(try inShared.credentials(for: .dockerHub)?.password == "pw", "the entry was not changed")
    }

    @Test func concurrentLoginsKeepEveryEntry() throws {
        let t = TempDir("keystore")
        let k = Keystore(path: t.path + "/keystore")
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            try? k.store(Credentials(username: "u\(i)", password: "p\(i)"),
                         for: RegistryEndpoint(scheme: "https", host: "reg\(i).example"))
        }
        #expect(try k.allCredentials().count == 16)
        #expect(mode(k.path) == 0o600)
        let leftovers = try FileIO.listDirectory(t.path).filter { $0.contains(".tmp.") }
        #expect(leftovers.isEmpty)
    }

    @Test func credentialsNeverShowThePassword() {
        let c = Credentials(username: "alice", password: "hunter2-secret")
        var dumped = ""
        dump(c, to: &dumped)
        for text in [String(describing: c), String(reflecting: c), "\(c)", dumped, "\([c])"] {
            #expect(!text.contains("hunter2-secret"), "\(text)")
            #expect(text.contains("alice"))
        }
    }

    @Test func caBundleFromTheEnvironment() throws {
        let t = TempDir("keystore")
        let pem = try t.write("ca.pem", "-----BEGIN CERTIFICATE-----\n")
        let c = Configuration(home: t.path)
        #expect(try RegistryAccess.httpOptions(configuration: c, environment: [:]).caFile == nil)
        #expect(try RegistryAccess.httpOptions(configuration: c, environment: ["SSL_CERT_FILE": pem]).caFile == pem)
        #expect(try RegistryAccess.httpOptions(configuration: c, environment: ["CURL_CA_BUNDLE": pem, "SSL_CERT_FILE": "/x"]).caFile == pem)
        #expect(throws: RuntimeError.badEnvironment(variable: "CURL_CA_BUNDLE", value: t.path + "/missing",
                                                   expected: "the path of a PEM file of CA certificates")) {
            try RegistryAccess.httpOptions(configuration: c, environment: ["CURL_CA_BUNDLE": t.path + "/missing"])
        }
    }

    @Test func searchTargets() throws {
        let c = Configuration(home: "/nonexistent")
        let hub = try RegistryAccess.searchTarget(expression: "ubuntu:22.04", registryOption: nil, indexOption: nil, configuration: c)
        #expect(hub.registry == .dockerHub && hub.index == nil && hub.expression == "ubuntu")
        let quay = try RegistryAccess.searchTarget(expression: "quay.io/centos", registryOption: nil, indexOption: nil, configuration: c)
        #expect(quay.registry.host == "quay.io" && quay.expression == "centos")
        let local = try RegistryAccess.searchTarget(expression: "test/busy", registryOption: "http://127.0.0.1:5000", indexOption: nil, configuration: c)
        #expect(local.registry.baseURL == "http://127.0.0.1:5000" && local.index == nil && local.expression == "test/busy")
        for hubIndex in ["https://index.docker.io/v1", "https://hub.docker.com"] {
            let t = try RegistryAccess.searchTarget(expression: "x", registryOption: nil, indexOption: hubIndex, configuration: c)
            #expect(t.registry == .dockerHub && t.index == nil)
        }
        let other = try RegistryAccess.searchTarget(expression: "x", registryOption: nil, indexOption: "http://127.0.0.1:5001", configuration: c)
        #expect(other.registry.baseURL == "http://127.0.0.1:5001" && other.index?.baseURL == "http://127.0.0.1:5001")
    }
}
