// `udocker sync docker://HOST:PORT/NS` and `sync --from=docker://…` through the binary, against
// docker-registry on 127.0.0.1: images there and back with their digests, a second sync sending
// nothing, --dry-run, unknown names, a registry that is not there, and a container changed by a run
// that comes back as image and container and runs.
import TestSupport
import Testing
import CAS
import Foundation

/// A repository in a temp dir with its own HOME, whose default registry is the shared one.
final class RegistrySyncRepo {
    let tmp: String
    let env: [String: String]
    var repo: String { tmp + "/repo" }

    init(registry: String) {
        tmp = makeTempDirectory("regsync")
        env = ["UDOCKER_DIR": tmp + "/repo", "HOME": tmp, "UDOCKER_REGISTRY": registry]
    }
    deinit { try? FileIO.removeTree(tmp) }

    func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) { runUdocker(args, env: env) }

    /// Manifest, config and layer digests of image NAME:TAG as its record has them.
    func digests(_ name: String, _ tag: String) throws -> [String] {
        let bytes = try FileIO.readFile(repo + "/repos/\(name)/\(tag)/image.json")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let layers = try #require(r["layers"] as? [[String: Any]])
        return [r["manifestDigest"] as? String ?? "-", r["configDigest"] as? String ?? "-"] + layers.map { "\($0["digest"] ?? "-")" }
    }
}

@Suite(.timeLimit(.minutes(3))) struct RegistrySyncCommandTests {
    @Test func imagesThereAndBackWithTheirDigests() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let place = "docker://\(target.hostPort)/ns"
        let src = RegistrySyncRepo(registry: shared.url)
        for tag in ["oci", "zstd"] {
            let p = src.run(["pull", "test/busybox:\(tag)"])
            try #require(p.status == 0, "\(p.stderr)")
        }

        let dry = src.run(["sync", "--dry-run", place])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(dry.stdout.contains("would sync image test/busybox:oci as \(target.hostPort)/ns/test/busybox:oci: 3 object(s) to send"), "\(dry.stdout)")
        #expect(dry.stdout.hasSuffix("would travel to \(place), which has 1 already; nothing was changed\n"), "\(dry.stdout)")
        #expect(target.manifestRepositories().isEmpty)

        let first = src.run(["sync", place])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("test/busybox:oci: 3 object(s) sent, 0 already there (\(target.hostPort)/ns/test/busybox:oci)"), "\(first.stderr)")
        #expect(first.stdout.hasPrefix("Info: synced 2 image(s) and 0 container(s) to \(place): 5 object(s) sent ("), "\(first.stdout)")
        #expect(first.stdout.hasSuffix("1 object(s) the target already had\n"), "\(first.stdout)")

        let again = src.run(["sync", place])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains(": 0 object(s) sent (0 B)") && again.stdout.hasSuffix("6 object(s) the target already had\n"), "\(again.stdout)")

        let dst = RegistrySyncRepo(registry: "https://registry.invalid")
        let back = dst.run(["sync", "--from=\(place)"])
        #expect(back.status == 0, "\(back.stderr)")
        // The repository is made first (Info: creating repo: …), then the last line says what came.
        #expect(back.stdout.split(separator: "\n").last?.hasPrefix("Info: synced 2 image(s) and 0 container(s) from \(place): 5 object(s) sent") == true,
                "\(back.stdout)")
        for tag in ["oci", "zstd"] { #expect(try dst.digests("test/busybox", tag) == src.digests("test/busybox", tag)) }
        let verify = dst.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        // mkrepo --from=docker://… makes a new repository filled from the namespace.
        let made = dst.run(["mkrepo", "--from=\(place)", dst.tmp + "/made"])
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.split(separator: "\n").last?.hasPrefix("Info: synced 2 image(s) and 0 container(s) from \(place)") == true, "\(made.stdout)")
        #expect(FileIO.exists(dst.tmp + "/made/repos/test/busybox/zstd/image.json"))
        // --containers leaves the images where they are.
        let none = RegistrySyncRepo(registry: "https://registry.invalid")
        let containersOnly = none.run(["sync", "--containers", "--from=\(place)"])
        #expect(containersOnly.stdout.split(separator: "\n").last?.hasPrefix("Info: synced 0 image(s) and 0 container(s)") == true,
                "\(containersOnly.stdout)\(containersOnly.stderr)")
        let quiet = dst.run(["sync", "-q", "--from=\(place)", "test/busybox:oci"])
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet)")
    }

    @Test func aContainerChangedByARunComesBackAsImageAndContainerAndRuns() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let place = "docker://\(target.hostPort)/ns"
        let src = RegistrySyncRepo(registry: shared.url)
        let p = src.run(["pull", "test/busybox:oci"])
        try #require(p.status == 0, "\(p.stderr)")
        let create = src.run(["create", "--name=web", "test/busybox:oci"])
        try #require(create.status == 0, "\(create.stderr)")
        let changed = src.run(["run", "web", "/bin/sh", "-c", "echo hello from web > /added.txt && mkdir /gone && echo x > /gone/f && /bin/busybox ls /bin > /listing"])
        try #require(changed.status == 0, "\(changed.stderr)")

        let up = src.run(["sync", "web", place])
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.hasPrefix("Info: synced 1 image(s) and 1 container(s) to \(place)"), "\(up.stdout)")
        #expect(target.manifestRepositories().contains("ns/container-web"), "\(target.manifestRepositories())")

        let dst = RegistrySyncRepo(registry: "https://registry.invalid")
        let back = dst.run(["sync", "--from=\(place)", "web"])
        #expect(back.status == 0, "\(back.stderr)")
        // Named alone, the container is what is counted; its image comes with it.
        #expect(back.stdout.split(separator: "\n").last?.hasPrefix("Info: synced 0 image(s) and 1 container(s) from \(place)") == true,
                "\(back.stdout)|\(back.stderr)")
        let images = dst.run(["images"])
        #expect(images.stdout.contains("test/busybox:oci"), "\(images.stdout)")
        let cat = dst.run(["run", "web", "/bin/busybox", "cat", "/added.txt"])
        #expect(cat.status == 0 && cat.stdout == "hello from web\n", "\(cat)")
        let listing = dst.run(["run", "web", "/bin/busybox", "cat", "/listing", "/gone/f"])
        #expect(listing.status == 0 && listing.stdout.contains("sh\n") && listing.stdout.hasSuffix("x\n"), "\(listing)")
        let verify = dst.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }

    @Test func unknownNamesAndARefusingRegistry() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let src = RegistrySyncRepo(registry: shared.url)
        let p = src.run(["pull", "test/busybox:oci"])
        try #require(p.status == 0, "\(p.stderr)")

        let unknown = src.run(["sync", "nothing:here", "docker://\(target.hostPort)/ns"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.hasPrefix("Error: no image or container named nothing:here"), "\(unknown.stderr)")
        #expect(target.manifestRepositories().isEmpty)

        let empty = RegistrySyncRepo(registry: shared.url)
        let absent = empty.run(["sync", "--from=docker://\(target.hostPort)/ns", "gone:1"])
        #expect(absent.status == 1)
        #expect(absent.stderr.hasPrefix("Error: docker://\(target.hostPort)/ns has no image or container named gone:1"), "\(absent.stderr)")

        let port = freePort()
        let refused = src.run(["sync", "docker://127.0.0.1:\(port)/ns"])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("Error: sync with docker://127.0.0.1:\(port)/ns failed while reaching https://127.0.0.1:\(port): cannot reach"),
                "\(refused.stderr)")
    }
}
