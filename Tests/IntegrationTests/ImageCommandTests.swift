// pull, images, inspect, manifest inspect, tag, rmi, verify, protect and unprotect through the udocker
// binary, against the shared plain-HTTP test registry (UDOCKER_REGISTRY names it).
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository in a temp dir and the environment that points udocker at it and at the registry.
final class ImageRepo {
    let tmp: String
    let env: [String: String]
    var repo: String { tmp + "/repo" }
    var store: String { repo + "/store" }

    /// `extra`: more environment for every command (UDOCKER_STORE_PROTECTION=detect for a store whose
    /// files the test changes by hand).
    init(_ extra: [String: String] = [:]) throws {
        let s = try SharedRegistry.get()
        tmp = makeTempDirectory("images")
        env = ["UDOCKER_DIR": tmp + "/repo", "UDOCKER_REGISTRY": s.registry.url].merging(extra) { $1 }
    }
    deinit { try? FileIO.removeTree(tmp) }

    func run(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: env.merging(extra) { $1 })
    }

    var blobFiles: Set<String> {
        let b = store + "/blobs/sha256"
        return Set(((try? FileIO.listDirectory(b)) ?? []).flatMap { p in
            ((try? FileIO.listDirectory(b + "/" + p)) ?? []).filter { !$0.contains(".") }
        })
    }
    var layerDirs: Set<String> { Set((try? FileIO.listDirectory(store + "/layers/sha256")) ?? []) }

    func record(_ name: String, _ tag: String) throws -> [String: Any] {
        let bytes = try FileIO.readFile(repo + "/repos/\(name)/\(tag)/image.json")
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func layerBlobs(_ name: String, _ tag: String) throws -> [String] {
        let layers = try #require(try record(name, tag)["layers"] as? [[String: Any]])
        return layers.compactMap { ($0["digest"] as? String).map { String($0.dropFirst(7)) } }
    }
}

@Suite struct ImageCommandTests {
    @Test func pullKilledAtAnyMomentLeavesAStoreThatVerifiesAndTheNextPullCompletes() throws {
        // Layers are unpacked while they download: a kill -9 may land in the download, the streamed
        // unpack, the blob commit or the adoption of the layer.
        let r = try ImageRepo()
        for delay in [3_000, 10_000, 20_000, 35_000, 60_000, 100_000] as [UInt32] {
            let pid = startUdocker(["-q", "pull", "test/busybox:oci"], env: r.env)
            usleep(delay)
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
            let verify = r.run(["store", "verify"])
            #expect(verify.status == 0, "after kill at \(delay) µs: \(verify.stdout) \(verify.stderr)")
        }
        let pull = r.run(["-q", "pull", "test/busybox:oci"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(r.run(["verify", "test/busybox:oci"]).status == 0)
        #expect(r.run(["store", "verify"]).status == 0)
        #expect(((try? FileIO.listDirectory(r.store + "/tmp")) ?? []).isEmpty, "temp files left after a completed pull")
    }

    @Test func pullListInspectAndProgressLines() throws {
        let r = try ImageRepo()
        let pull = r.run(["pull", "test/busybox:oci"])
        #expect(pull.status == 0, "\(pull.stderr)")
        // Not a terminal: one line per layer on stderr.
        let lines = pull.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(pull.stderr)")
        #expect(lines.first?.hasPrefix("sha256:") == true && lines.first?.contains("downloaded") == true, "\(pull.stderr)")
        #expect(pull.stdout.contains("Info: pulled test/busybox:oci"))

        let rec = try r.record("test/busybox", "oci")
        #expect(rec["manifestMediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
        #expect(rec["repository"] as? String == "test/busybox")
        #expect(FileIO.exists(r.repo + "/repos/test/busybox/oci/TAG"))

        let images = r.run(["images"])
        #expect(images.status == 0)
        #expect(images.stdout == "REPOSITORY\ntest/busybox:oci    .\n")   // udocker 1.3.17's "%s    %c"
        let long = r.run(["images", "-l"])
        #expect(long.stdout.hasPrefix("REPOSITORY\ntest/busybox:oci    .\n \(r.repo)/repos/test/busybox/oci\n    /sha256:"), "\(long.stdout)")

        let inspect = r.run(["inspect", "test/busybox:oci"])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("\"diff_ids\": ["))
        #expect(inspect.stdout.contains("    \"architecture\": \"amd64\","))
        let manifest = r.run(["manifest", "inspect", "test/busybox:oci"])
        #expect(manifest.stdout.contains("\"schemaVersion\": 2"))
        let missing = r.run(["inspect", "test/busybox:nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("Error: image not found: test/busybox:nope"))

        // Pulling again downloads nothing; -q prints nothing at all.
        let again = r.run(["-q", "pull", "test/busybox:oci"])
        #expect(again.status == 0)
        #expect(again.stdout == "" && again.stderr == "")
        let verbose = r.run(["pull", "test/busybox:oci"])
        #expect(verbose.stderr.contains("already in the store"))
    }

    @Test func platformChoice() throws {
        let r = try ImageRepo()
        let arm = r.run(["pull", "--platform=linux/arm64", "test/multi"])
        #expect(arm.status == 0, "\(arm.stderr)")
        let platform = try #require(try r.record("test/multi", "latest")["platform"] as? [String: Any])
        #expect(platform["architecture"] as? String == "arm64")
        #expect(try r.record("test/multi", "latest")["indexDigest"] is String)
        #expect(r.run(["manifest", "inspect", "--index", "test/multi"]).stdout.contains("\"manifests\": ["))

        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if machine == "x86_64" {
            #expect(r.run(["rmi", "test/multi"]).status == 0)
            let host = r.run(["pull", "test/multi"])
            #expect(host.status == 0, "\(host.stderr)")
            let p = try #require(try r.record("test/multi", "latest")["platform"] as? [String: Any])
            #expect(p["architecture"] as? String == "amd64")
        }
        let bad = r.run(["pull", "--platform=linux/s390x", "test/multi"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("no variant for platform linux/s390x"))
    }

    @Test func tagProtectAndRmiKeepSharedLayers() throws {
        let r = try ImageRepo()
        #expect(r.run(["-q", "pull", "test/busybox:oci"]).status == 0)
        #expect(r.run(["-q", "pull", "test/busybox:zstd"]).status == 0)
        let ociBlob = try #require(try r.layerBlobs("test/busybox", "oci").first)
        let zstdBlob = try #require(try r.layerBlobs("test/busybox", "zstd").first)
        #expect(r.blobFiles.contains(ociBlob) && r.blobFiles.contains(zstdBlob))
        #expect(r.layerDirs.count == 1, "both images unpack to one layer")

        #expect(r.run(["tag", "test/busybox:oci", "mine/box:v1"]).status == 0)
        let listed = r.run(["images"]).stdout
        #expect(listed.contains("mine/box:v1 ") && listed.contains("test/busybox:oci ") && listed.contains("test/busybox:zstd "))
        #expect(r.run(["tag", "test/busybox:oci", "mine/box:v1"]).status == 1, "tag refuses an existing name")

        #expect(r.run(["protect", "test/busybox:zstd"]).status == 0)
        #expect(r.run(["images"]).stdout.contains("\ntest/busybox:zstd    P\n"))
        let refused = r.run(["rmi", "test/busybox:zstd"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("is protected"))
        #expect(r.run(["rmi", "-f", "test/busybox:zstd"]).status == 1, "-f does not remove a protected image")
        #expect(r.run(["unprotect", "test/busybox:zstd"]).status == 0)

        // rmi zstd: its blob goes, the unpacked layer stays (the oci image uses it).
        let rmi = r.run(["rmi", "test/busybox:zstd"])
        #expect(rmi.status == 0, "\(rmi.stderr)")
        #expect(!r.blobFiles.contains(zstdBlob))
        #expect(r.blobFiles.contains(ociBlob))
        #expect(r.layerDirs.count == 1)
        #expect(!FileIO.exists(r.repo + "/repos/test/busybox/zstd"))

        // The tag still holds everything of the oci image.
        #expect(r.run(["rmi", "test/busybox:oci"]).status == 0)
        #expect(r.blobFiles.contains(ociBlob))
        #expect(r.layerDirs.count == 1)
        #expect(r.run(["rmi", "mine/box:v1"]).status == 0)
        #expect(r.blobFiles.isEmpty, "left: \(r.blobFiles)")
        #expect(r.layerDirs.isEmpty)
        #expect(r.run(["images"]).stdout == "REPOSITORY\n")
        #expect(r.run(["rmi", "mine/box:v1"]).status == 1)
    }

    @Test func verifyFindsAChangedFile() throws {
        // An unsealed store: a sealed one's files cannot be changed by their user at all.
        let r = try ImageRepo(["UDOCKER_STORE_PROTECTION": "detect"])
        #expect(r.run(["-q", "pull", "test/busybox:docker"]).status == 0)
        let ok = r.run(["verify", "test/busybox:docker"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("Info: verifying: test/busybox:docker"))
        #expect(ok.stdout.contains("Info: image Ok"))

        let diffID = try #require(try (r.record("test/busybox", "docker")["layers"] as? [[String: Any]])?.first?["diffID"] as? String)
        let file = r.store + "/layers/sha256/\(diffID.dropFirst(7))/root/bin/busybox"
        #expect(chmod(file, 0o755) == 0)
        let fd = open(file, O_WRONLY)
        #expect(fd >= 0)
        _ = pwrite(fd, "X", 1, 100)
        close(fd)
        let bad = r.run(["verify", "test/busybox:docker"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("bin/busybox of unpacked layer") && bad.stderr.contains("has changed in place (content"), "\(bad.stderr)")
        #expect(bad.stderr.contains("Error: image verification failure"))
    }

    @Test(.enabled(if: FileIO.exists("/usr/bin/script"), "needs util-linux script for a terminal"))
    func progressBarsOnATerminal() throws {
        let r = try ImageRepo()
        let home = makeTempDirectory("home")
        defer { try? FileIO.removeTree(home) }
        let root = geteuid() == 0 ? " --allow-root" : ""
        var env = r.env
        env["HOME"] = home
        env["PATH"] = "/usr/bin:/bin"
        env["UDOCKER_NOSYSCONF"] = "1"
        let out = spawnAndCollect(["/usr/bin/script", "-qec", udockerBinaryPath() + root + " pull test/busybox:zstd", "/dev/null"],
                                  environment: env, stdin: nil)
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.contains("total"), "\(out.stdout)")
        #expect(out.stdout.contains("[=========================]"), "a full bar: \(out.stdout)")
        #expect(out.stdout.contains("\u{1B}[K"), "lines are redrawn in place")
    }
}
