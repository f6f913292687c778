// push through the udocker binary: pull from one test registry, push to another, pull back with the
// same digests; repeated pushes upload nothing; cross-repository mounts; TLS+htpasswd with and
// without login; a missing local image. All registries are docker-registry on 127.0.0.1.
import TestSupport
import Testing
import CAS
import Foundation

/// A repository in a temp dir whose default registry is `registry`, with its own HOME (keystore).
final class PushRepo {
    let tmp: String
    let env: [String: String]
    var repo: String { tmp + "/repo" }

    init(registry: String, extra: [String: String] = [:]) {
        tmp = makeTempDirectory("push")
        env = ["UDOCKER_DIR": tmp + "/repo", "HOME": tmp, "UDOCKER_REGISTRY": registry].merging(extra) { $1 }
    }
    deinit { try? FileIO.removeTree(tmp) }

    func run(_ args: [String], stdin: [UInt8]? = nil) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: env, stdin: stdin)
    }

    func record(_ name: String, _ tag: String) throws -> [String: Any] {
        let bytes = try FileIO.readFile(repo + "/repos/\(name)/\(tag)/image.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    /// Manifest digest, config digest and the layers' (blob, diff_id) of a local image.
    func digests(_ name: String, _ tag: String) throws -> [String] {
        let r = try record(name, tag)
        let layers = try #require(r["layers"] as? [[String: Any]])
        return [r["manifestDigest"] as? String ?? "-", r["configDigest"] as? String ?? "-"]
            + layers.map { "\($0["digest"] ?? "-") \($0["diffID"] ?? "-")" }
    }
}

/// The lines of `text` (stderr progress lines, one per blob when not a terminal).
func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

/// Blobs linked into repository `name` of a registry's storage (what HEAD and pull can see there).
func linkedLayers(_ r: TestRegistry, _ name: String) -> Set<String> {
    Set((try? FileIO.listDirectory(r.storage + "/docker/registry/v2/repositories/\(name)/_layers/sha256")) ?? [])
}

@Suite struct PushCommandTests {
    @Test func pushToAnotherRegistryAndPullBack() throws {
        let a = try SharedRegistry.get().registry
        let b = try TestRegistry()
        defer { b.stop() }
        let src = PushRepo(registry: a.url)
        for tag in ["oci", "docker", "zstd"] {
            let pull = src.run(["pull", "test/busybox:\(tag)"])
            #expect(pull.status == 0, "\(pull.stderr)")
        }

        // Layer and config uploaded, one progress line each; the name given on the command line.
        let push = src.run(["push", "--registry=\(b.url)", "test/busybox:oci", "moved/busybox:v1"])
        #expect(push.status == 0, "\(push.stderr)")
        let progress = lines(push.stderr)
        #expect(progress.count == 2, "\(push.stderr)")
        #expect(progress.allSatisfy { $0.hasPrefix("sha256:") && $0.contains(": uploaded ") }, "\(push.stderr)")
        let manifest = try #require(try src.record("test/busybox", "oci")["manifestDigest"] as? String)
        #expect(push.stdout == "Info: pushed test/busybox:oci to \(b.hostPort)/moved/busybox:v1 (\(manifest)): "
            + "2 blob(s) uploaded, 0 mounted, 0 already there\n")

        // A fresh repository pulls exactly the same image back.
        let dst = PushRepo(registry: b.url)
        let back = dst.run(["pull", "moved/busybox:v1"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try dst.digests("moved/busybox", "v1") == src.digests("test/busybox", "oci"))
        #expect(dst.run(["verify", "moved/busybox:v1"]).status == 0)

        // Pushing again uploads nothing: every HEAD hits. -q shows no progress.
        let again = src.run(["push", "--registry=\(b.url)", "test/busybox:oci", "moved/busybox:v1"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(lines(again.stderr).count == 2 && lines(again.stderr).allSatisfy { $0.hasSuffix(": already in the registry") },
                "\(again.stderr)")
        #expect(again.stdout.hasSuffix("0 blob(s) uploaded, 0 mounted, 2 already there\n"), "\(again.stdout)")
        let quiet = src.run(["-q", "push", "--registry=\(b.url)", "test/busybox:oci", "moved/busybox:v1"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet)")

        // Docker media types and a zstd layer keep their digests too; the destination may name the
        // registry host (its scheme comes from --registry); the zstd image shares its config only.
        for tag in ["docker", "zstd"] {
            let p = src.run(["push", "--registry=\(b.url)", "test/busybox:\(tag)", "\(b.hostPort)/moved/busybox:\(tag)"])
            #expect(p.status == 0, "\(p.stderr)")
            let pulled = dst.run(["pull", "moved/busybox:\(tag)"])
            #expect(pulled.status == 0, "\(pulled.stderr)")
            #expect(try dst.digests("moved/busybox", tag) == src.digests("test/busybox", tag))
        }
        // DEST defaults to the image's own name (here in the registry given with --registry).
        let same = src.run(["push", "--registry=\(b.url)", "test/busybox:oci"])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(same.stdout.contains(" to \(b.hostPort)/test/busybox:oci "), "\(same.stdout)")
        #expect(dst.run(["pull", "test/busybox:oci"]).status == 0)
        #expect(try dst.digests("test/busybox", "oci") == src.digests("test/busybox", "oci"))
    }

    @Test func crossRepositoryMountWithinOneRegistry() throws {
        let a = try SharedRegistry.get()
        let r = try TestRegistry()
        defer { r.stop() }
        try r.push(layout: a.layout, tag: "gzip", to: "src/img", destTag: "v1")
        let repo = PushRepo(registry: r.url)
        #expect(repo.run(["pull", "src/img:v1"]).status == 0)
        let blobs = linkedLayers(r, "src/img")
        #expect(blobs.count == 2)
        #expect(linkedLayers(r, "other/img").isEmpty)

        let push = repo.run(["push", "src/img:v1", "other/img:v2"])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(lines(push.stderr).count == 2 && lines(push.stderr).allSatisfy { $0.hasSuffix(": mounted from src/img") },
                "\(push.stderr)")
        #expect(push.stdout.hasSuffix("0 blob(s) uploaded, 2 mounted, 0 already there\n"), "\(push.stdout)")
        #expect(linkedLayers(r, "other/img") == blobs)
        let check = PushRepo(registry: r.url)
        #expect(check.run(["pull", "other/img:v2"]).status == 0)
        #expect(try check.digests("other/img", "v2") == repo.digests("src/img", "v1"))
    }

    @Test func pushNeedsLoginOnAPrivateRegistry() throws {
        let a = try SharedRegistry.get().registry
        let user = "pusher", password = "Push-pw-4711"
        let p = try TestRegistry(tls: true, auth: .htpasswd(user: user, password: password))
        defer { p.stop() }
        let repo = PushRepo(registry: a.url, extra: ["CURL_CA_BUNDLE": p.caFile ?? ""])
        #expect(repo.run(["pull", "test/busybox:oci"]).status == 0)

        let anonymous = repo.run(["push", "test/busybox:oci", "\(p.hostPort)/priv/img:v1"])
        #expect(anonymous.status == 1)
        #expect(anonymous.stderr == "Error: \(p.hostPort) requires a username and password: run 'udocker login --registry=\(p.hostPort)'\n",
                "\(anonymous.stderr)")
        #expect(linkedLayers(p, "priv/img").isEmpty)

        let login = repo.run(["login", "--username=\(user)", "--password-stdin", "--registry=\(p.url)"], stdin: Array(password.utf8))
        #expect(login.status == 0, "\(login.stderr)")
        let push = repo.run(["-D", "push", "test/busybox:oci", "\(p.hostPort)/priv/img:v1"])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(!push.stderr.contains(password) && !push.stdout.contains(password))
        #expect(!push.stderr.contains(Data("\(user):\(password)".utf8).base64EncodedString()))
        let back = repo.run(["pull", "\(p.hostPort)/priv/img:v1"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try repo.digests("\(p.hostPort)/priv/img", "v1") == repo.digests("test/busybox", "oci"))
    }

    @Test func clearErrors() throws {
        let a = try SharedRegistry.get().registry
        let repo = PushRepo(registry: a.url)
        let missing = repo.run(["push", "nope/img:v1", "somewhere/img:v1"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "Error: image not found: nope/img:v1: see 'udocker images', or pull it with 'udocker pull nope/img:v1'\n",
                "\(missing.stderr)")

        // A registry that is not there: one line naming it, after the retries.
        #expect(repo.run(["pull", "test/busybox:oci"]).status == 0)
        let closed = repo.run(["push", "--registry=http://127.0.0.1:9", "test/busybox:oci", "x/y:z"])
        #expect(closed.status == 1)
        #expect(closed.stderr.hasPrefix("Error: ") && lines(closed.stderr).count == 1, "\(closed.stderr)")
        #expect(closed.stderr.contains("127.0.0.1:9"), "\(closed.stderr)")

        let usage = repo.run(["push"])
        #expect(usage.status == 1 && usage.stderr.hasPrefix("Error: "), "\(usage.stderr)")
    }
}
