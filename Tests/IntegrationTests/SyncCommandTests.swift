// `udocker sync`, `sync --from` and `mkrepo --from` between two repositories on this host, through
// the binary: what travels (each object once, nothing the second time), kill -9 of either end and
// the rerun, a large blob resumed half-way, a damaged stream, two syncs at once, version mismatch.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A source repository with images from the shared registry (and, with `big`, an imported image
/// whose layer is 8 MiB of random bytes), and target directories beside it.
final class SyncRepos {
    let source: ImageRepo
    /// The large layer's digest (hex) and size, with `big`.
    private(set) var bigLayer: (hex: String, size: Int64)?
    static let bigBytes = 8 << 20

    init(images: [String] = ["test/busybox:oci", "test/busybox:zstd", "test/many:t00"], big: Bool = true) throws {
        source = try ImageRepo()
        for i in images {
            let p = source.run(["pull", i])
            try #require(p.status == 0, "\(p.stderr)")
        }
        if big {
            let dir = source.tmp + "/bigimage"
            try FileIO.mkdirs(dir + "/data")
            _ = try runCommand("/bin/sh", ["-c", "head -c \(Self.bigBytes) /dev/urandom > '\(dir)/data/random'"])
            _ = try runCommand("/bin/tar", ["-C", dir, "-cf", dir + ".tar", "data"])
            let imp = source.run(["import", dir + ".tar", "test/big:1"])
            try #require(imp.status == 0, "\(imp.stderr)")
            let hex = try #require(try source.layerBlobs("test/big", "1").first)
            bigLayer = (hex, try Self.size(of: source.store + "/blobs/sha256/\(hex.prefix(2))/\(hex)"))
        }
    }

    func target(_ name: String = "target") -> String { source.tmp + "/" + name }

    /// `udocker ARGS` in the source repository.
    func run(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        source.run(args, extra)
    }

    /// `udocker --repo=DIR ARGS`.
    func on(_ dir: String, _ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        source.run(["--repo=" + dir] + args, extra)
    }

    /// `sync ARGS --report=FILE`: the result and the report's figures.
    func sync(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String, report: [String: Int64]) {
        reported(["sync"], args, extra)
    }

    /// `COMMAND --report=FILE ARGS` (sync, export --repo, import --repo): the result and the report's figures.
    func reported(_ command: [String], _ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String, report: [String: Int64]) {
        let file = source.tmp + "/report-\(UInt32.random(in: 0...UInt32.max)).json"
        let r = run(command + ["--report=" + file] + args, extra)
        var figures = [String: Int64]()
        if let bytes = try? FileIO.readFile(file), let top = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any],
           let report = top["report"] as? [String: Any] {
            for (k, v) in report { figures[k] = (v as? NSNumber)?.int64Value }
        }
        return (r.status, r.stdout, r.stderr, figures)
    }

    func images(_ dir: String) -> [String] {
        on(dir, ["images"]).stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: " ")[0]) }
    }

    func blobs(_ dir: String) -> Set<String> {
        let b = dir + "/store/blobs/sha256"
        return Set(((try? FileIO.listDirectory(b)) ?? []).flatMap { p in
            ((try? FileIO.listDirectory(b + "/" + p)) ?? []).filter { !$0.contains(".") }
        })
    }

    /// Waits (up to 60 s) until no sync receives into `dir`: a receiver drops its reservation
    /// last, after removing its temp files. For a far end whose initiator was killed.
    func waitForReceiver(_ dir: String) {
        for _ in 0..<600 {
            let refs = dir + "/store/refs"
            let busy = ((try? FileIO.listDirectory(refs)) ?? []).contains { name in
                ((try? FileIO.readFile(refs + "/" + name)).map { String(decoding: $0, as: UTF8.self) } ?? "").contains("sync-receive-")
            }
            if !busy { return }
            usleep(100_000)
        }
    }

    func tempFiles(_ dir: String) -> [String] { (try? FileIO.listDirectory(dir + "/store/tmp")) ?? [] }

    /// Every blob of the source and the sum of their sizes.
    func sourceObjects() throws -> (count: Int, bytes: Int64) {
        let all = blobs(source.repo)
        var total: Int64 = 0
        for hex in all { total += try Self.size(of: source.store + "/blobs/sha256/\(hex.prefix(2))/\(hex)") }
        return (all.count, total)
    }

    func verify(_ dir: String) -> (ok: Bool, text: String) {
        let v = on(dir, ["store", "verify"])
        return (v.status == 0 && v.stdout.contains("healthy"), v.stdout + v.stderr)
    }

    static func size(of path: String) throws -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw CASError.io("stat", path, errno) }
        return Int64(st.st_size)
    }

    /// A stand-in for ssh that runs the remote command here (`HOST WORD...`), with what goes to the
    /// far end's stdin first through `filter` (a shell command), e.g. one that flips a byte.
    /// With `output`, what comes from the far end goes through `filter` instead.
    func fakeSSH(filter: String?, output: Bool = false) throws -> String {
        let path = source.tmp + "/fake-ssh-\(UInt32.random(in: 0...UInt32.max))"
        let command = filter.map { output ? "$* | " + $0 : $0 + " | $*" } ?? "$*"
        try writeFile(path, "shift\nexec /bin/sh -c \"\(command)\"\n")
        // Run by sh, not executed itself: a script just written can be "busy" (ETXTBSY) while a
        // process spawned meanwhile by another test still holds the descriptor it was written by.
        return "/bin/sh " + path
    }

    /// A python filter that copies stdin to stdout with the byte at `offset` changed.
    func flipper(at offset: Int) throws -> String {
        let path = source.tmp + "/flip.py"
        try writeFile(path, """
            import os, sys
            n = int(sys.argv[1]); seen = 0
            while True:
                b = os.read(0, 65536)
                if not b:
                    break
                if seen <= n < seen + len(b):
                    b = bytearray(b); b[n - seen] ^= 0x40; b = bytes(b)
                seen += len(b)
                while b:
                    w = os.write(1, b); b = b[w:]

            """)
        return "/usr/bin/python3 \(path) \(offset)"
    }
}

@Suite(.timeLimit(.minutes(10))) struct SyncCommandTests {
    @Test func firstSyncSendsEachObjectOnceSecondSendsNothingAndTheImagesRunThere() throws {
        let s = try SyncRepos()
        let target = s.target()
        let (count, bytes) = try s.sourceObjects()
        let first = s.sync([target])
        #expect(first.status == 0, "\(first.stderr)")
        // Each object once: as many as the source store holds, with their bytes (and framing) on the wire.
        #expect(first.report["objectsSent"] == Int64(count) && first.report["objectsPresent"] == 0, "\(first.report)")
        #expect(first.report["objectBytes"] == bytes, "\(first.report) vs \(bytes)")
        #expect((first.report["bytesOnWire"] ?? 0) > bytes && (first.report["bytesOnWire"] ?? 0) < bytes + bytes / 50 + 65536)
        #expect(first.report["images"] == 4)
        // Not a terminal: a line per image on stderr, the summary last on stdout.
        #expect(first.stderr.split(separator: "\n").filter { $0.contains("object(s) sent") }.count == 4, "\(first.stderr)")
        #expect(first.stdout.contains("Info: synced 4 image(s) and 0 container(s) to \(target): \(count) object(s) sent"), "\(first.stdout)")
        #expect(s.images(target) == s.images(s.source.repo) && s.images(target).count == 4)
        for (name, tag) in [("test/busybox", "oci"), ("test/busybox", "zstd"), ("test/many", "t00"), ("test/big", "1")] {
            let a = try FileIO.readFile(s.source.repo + "/repos/\(name)/\(tag)/image.json")
            let b = try FileIO.readFile(target + "/repos/\(name)/\(tag)/image.json")
            #expect(a == b, "the record of \(name):\(tag) differs")
        }
        let v = s.verify(target)
        #expect(v.ok, "\(v.text)")
        #expect(s.on(target, ["verify", "test/busybox:zstd"]).status == 0)
        #expect(s.tempFiles(target).isEmpty, "\(s.tempFiles(target))")

        let second = s.sync(["-q", target])
        #expect(second.status == 0 && second.stdout.isEmpty && second.stderr.isEmpty, "\(second)")
        #expect(second.report["objectBytes"] == 0 && second.report["objectsSent"] == 0 && second.report["objectsPresent"] == Int64(count))

        let c = s.on(target, ["create", "--name=c", "test/busybox:oci"])
        #expect(c.status == 0, "\(c.stderr)")
        let r = s.on(target, ["run", "--nobanner", "c", "/bin/sh", "-c", "echo synced here"])
        #expect(r.status == 0 && r.stdout == "synced here\n", "\(r)")
    }

    @Test func dryRunSaysWhatWouldTravelAndChangesNothing() throws {
        let s = try SyncRepos(images: ["test/busybox:oci"], big: false)
        let target = s.target()
        let (count, bytes) = try s.sourceObjects()
        let dry = s.sync(["--dry-run", target])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(!FileIO.exists(target), "a dry run created the target")
        #expect(dry.report["objectsSent"] == Int64(count) && dry.report["objectBytes"] == bytes)
        #expect(dry.stdout.split(separator: "\n").filter { $0.hasPrefix("would send sha256:") }.count == count, "\(dry.stdout)")
        #expect(dry.stdout.contains("nothing was changed"))
        #expect(s.sync(["-q", target]).status == 0)
        let before = try TreeSnapshot(target)
        let again = s.sync(["--dry-run", target])
        #expect(again.status == 0 && again.report["objectsSent"] == 0 && again.report["objectsPresent"] == Int64(count), "\(again)")
        // LMDB's reader table changes on any read of the index (`udocker images` does the same).
        let changed = try TreeSnapshot(target).differences(from: before).filter { !$0.hasPrefix("/store/index/lock.mdb:") }
        #expect(changed.isEmpty, "\(changed)")
    }

    @Test func syncFromAndMkrepoFrom() throws {
        let s = try SyncRepos(images: ["test/busybox:oci", "test/busybox:zstd"], big: false)
        let here = s.target("here")
        #expect(s.run(["mkrepo", here]).status == 0)
        let dry = s.on(here, ["sync", "--dry-run", "--from=" + s.source.repo])
        #expect(dry.status == 0 && dry.stdout.contains("dry run: 5 object(s)") && dry.stdout.contains("from \(s.source.repo)"), "\(dry)")
        #expect(s.images(here).isEmpty && s.blobs(here).isEmpty)
        let from = s.on(here, ["sync", "--from=" + s.source.repo])
        #expect(from.status == 0, "\(from.stderr)")
        #expect(from.stdout.contains("synced 2 image(s) and 0 container(s) from \(s.source.repo)"), "\(from.stdout)")
        #expect(s.images(here) == ["test/busybox:oci", "test/busybox:zstd"])
        #expect(s.verify(here).ok)

        let made = s.target("made")
        let mk = s.run(["mkrepo", "--from=" + s.source.repo, made])
        #expect(mk.status == 0, "\(mk.stderr)")
        #expect(s.images(made) == ["test/busybox:oci", "test/busybox:zstd"], "\(mk)")
        #expect(s.verify(made).ok)
        // One image by name, brought from the source.
        let one = s.target("one")
        #expect(s.run(["mkrepo", one]).status == 0)
        #expect(s.on(one, ["sync", "--from=" + s.source.repo, "test/busybox:zstd"]).status == 0)
        #expect(s.images(one) == ["test/busybox:zstd"])
    }

    @Test func namesChooseImagesAndAnUnknownNameIsAnErrorThatSendsNothing() throws {
        let s = try SyncRepos(images: ["test/busybox:oci", "test/busybox:zstd"], big: false)
        let target = s.target()
        let one = s.sync(["test/busybox:zstd", target])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(s.images(target) == ["test/busybox:zstd"])
        #expect(one.report["images"] == 1 && one.report["objectsSent"] == 3, "\(one.report)")

        let other = s.target("other")
        let bad = s.run(["sync", "test/busybox:oci", "nosuch/image:1", other])
        #expect(bad.status == 1 && bad.stderr.contains("no image or container named nosuch/image:1"), "\(bad.stderr)")
        #expect(!FileIO.exists(other), "an unknown name created the target")
        let badFrom = s.on(target, ["sync", "--from=" + s.source.repo, "nosuch/image:1"])
        #expect(badFrom.status == 1 && badFrom.stderr.contains("nosuch/image:1"), "\(badFrom.stderr)")
        // sync is in the main help, its far end is not.
        let help = s.run(["--help"]).stdout
        #expect(help.contains(" sync ") && !help.contains("sync-serve"), "\(help)")
        // docker:// goes to the registry sync (RegistrySyncCommandTests): a port nobody listens on is a clear error.
        let port = freePort()
        let registry = s.run(["sync", "docker://127.0.0.1:\(port)/ns"])
        #expect(registry.status == 1 && registry.stderr.contains("docker://127.0.0.1:\(port)/ns failed while reaching"), "\(registry.stderr)")
    }

    @Test(arguments: ["sync-sender-object-1", "sync-sender-object-3", "sync-sender-mid-blob",
                      "sync-receiver-object-2", "sync-receiver-object-5", "sync-receiver-mid-blob", "sync-receiver-before-refs"])
    func killedEndThenRerunCompletesWithoutResendingFinishedObjects(failpoint: String) throws {
        let s = try SyncRepos()
        let target = s.target()
        let (count, _) = try s.sourceObjects()
        let cut = s.sync([target], ["UDOCKER_FAILPOINT": failpoint])
        #expect(cut.status != 0, "\(failpoint): the sync went through")
        // When the initiator (the sender) was killed, its far end notices the cut and ends.
        if failpoint.hasPrefix("sync-sender") { s.waitForReceiver(target) }
        #expect(s.images(target).isEmpty, "\(failpoint): an image was recorded by a cut sync")
        let v = s.verify(target)
        #expect(v.ok, "\(failpoint): \(v.text)")
        let kept = s.blobs(target)
        let rerun = s.sync([target])
        #expect(rerun.status == 0, "\(failpoint): \(rerun.stderr)")
        #expect(rerun.report["objectsPresent"] == Int64(kept.count), "\(failpoint): \(rerun.report), \(kept.count) kept")
        #expect(rerun.report["objectsSent"] == Int64(count - kept.count), "\(failpoint): \(rerun.report)")
        #expect(s.images(target).count == 4)
        let after = s.verify(target)
        #expect(after.ok, "\(failpoint): \(after.text)")
        #expect(s.tempFiles(target).isEmpty, "\(failpoint): \(s.tempFiles(target))")
    }

    @Test(arguments: ["sync-receiver-mid-blob", "sync-sender-mid-blob"])
    func aLargeBlobCutHalfWayResumes(failpoint: String) throws {
        let s = try SyncRepos(images: [])
        let big = try #require(s.bigLayer)
        let target = s.target()
        let cut = s.sync([target], ["UDOCKER_FAILPOINT": failpoint])
        #expect(cut.status != 0)
        if failpoint.hasPrefix("sync-sender") { s.waitForReceiver(target) }
        let partial = target + "/store/tmp/partial." + big.hex
        let kept = (try? SyncRepos.size(of: partial)) ?? 0
        #expect(kept >= big.size / 4 && kept < big.size, "\(failpoint): partial file of \(kept) bytes")
        #expect(s.verify(target).ok)
        let rerun = s.sync([target])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.report["objectsSent"] == 1, "\(rerun.report)")
        #expect(rerun.report["objectBytes"] == big.size - kept, "\(rerun.report), \(kept) of \(big.size) kept")
        #expect(s.on(target, ["verify", "test/big:1"]).status == 0)
        #expect(s.verify(target).ok)
        #expect(!FileIO.exists(partial))
    }

    @Test(arguments: [300, 200_000])
    func aByteFlippedInTheStreamIsRefusedAndLandsNothing(offset: Int) throws {
        let s = try SyncRepos(images: [])
        let big = try #require(s.bigLayer)
        let ssh = try s.fakeSSH(filter: try s.flipper(at: offset))
        let target = s.target()
        let r = s.run(["sync", "--ssh=" + ssh, "--remote-udocker=" + udockerBinaryPath(), "ssh://localhost" + target])
        #expect(r.status == 1 && r.stderr.contains("damaged"), "\(r.stderr)")
        #expect(s.images(target).isEmpty)
        #expect(!s.blobs(target).contains(big.hex))
        #expect(!FileIO.exists(target + "/store/tmp/partial." + big.hex), "a damaged blob was kept for resuming")
        if FileIO.exists(target) { #expect(s.verify(target).ok) }

        // The other way (sync --from): the damage reaches the initiator, which refuses it and
        // stops the far end that is still sending.
        let here = s.target("here")
        #expect(s.run(["mkrepo", here]).status == 0)
        let back = try s.fakeSSH(filter: try s.flipper(at: offset), output: true)
        let from = s.on(here, ["sync", "--ssh=" + back, "--remote-udocker=" + udockerBinaryPath(), "--from=ssh://localhost" + s.source.repo])
        #expect(from.status == 1 && from.stderr.contains("damaged"), "\(from.stderr)")
        #expect(s.images(here).isEmpty && !s.blobs(here).contains(big.hex))
        #expect(s.verify(here).ok)
        // The same connection without the damage works.
        let clean = try s.fakeSSH(filter: nil)
        let ok = s.run(["sync", "--ssh=" + clean, "--remote-udocker=" + udockerBinaryPath(), "ssh://localhost" + target])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(s.images(target) == ["test/big:1"])
    }

    @Test func anObjectThatDoesNotMatchItsDigestIsRefusedEvenWithGoodFrames() throws {
        // A blob changed in the source store travels in frames whose checks pass: the receiver's
        // digest check is what refuses it.
        let s = try SyncRepos(images: [])
        let big = try #require(s.bigLayer)
        let path = s.source.store + "/blobs/sha256/\(big.hex.prefix(2))/\(big.hex)"
        _ = chmod(path, 0o644)
        let fd = open(path, O_WRONLY)
        var b: UInt8 = 0x5a
        #expect(pwrite(fd, &b, 1, 4_000_000) == 1)
        close(fd)
        let target = s.target()
        let r = s.run(["sync", target])
        #expect(r.status == 1 && r.stderr.contains("the far end of the sync failed: the object sha256:\(big.hex) that arrived does not match its digest"), "\(r.stderr)")
        #expect(s.images(target).isEmpty && !s.blobs(target).contains(big.hex))
        #expect(!FileIO.exists(target + "/store/tmp/partial." + big.hex))
        #expect(s.verify(target).ok)
    }

    @Test func twoSyncsIntoOneTargetAtOnceBothSucceed() throws {
        let s = try SyncRepos()
        let other = try SyncRepos(images: ["test/busybox:oci"], big: true)
        let target = s.target()
        // Both at once, each from its own repository.
        let a = startUdocker(["sync", target], env: s.source.env.merging(["HOME": s.source.tmp]) { $1 })
        let b = startUdocker(["sync", target], env: other.source.env.merging(["HOME": other.source.tmp]) { $1 })
        #expect(waitForExit(a) == 0)
        #expect(waitForExit(b) == 0)
        #expect(s.images(target) == ["test/big:1", "test/busybox:oci", "test/busybox:zstd", "test/many:t00"])
        #expect(s.verify(target).ok)
        #expect(s.on(target, ["verify", "test/big:1"]).status == 0)
    }

    @Test func aGCWhileTheSyncRunsKeepsWhatArrived() throws {
        let s = try SyncRepos(images: ["test/busybox:oci"])
        let target = s.target()
        #expect(s.run(["mkrepo", target]).status == 0)
        // The receiver (here the initiator, sync --from) stops after every object arrived, before
        // any image is recorded: only its reservation holds the objects while gc runs.
        let pid = startUdocker(["--repo=" + target, "sync", "--from=" + s.source.repo],
                               env: s.source.env.merging(["HOME": s.source.tmp, "UDOCKER_FAILPOINT": "sync-receiver-stop-before-refs"]) { $1 })
        var stopped = false
        for _ in 0..<600 where !stopped {
            let stat = (try? FileIO.readFile("/proc/\(pid)/stat")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            stopped = stat.split(separator: ")").last?.split(separator: " ").first == "T"
            if !stopped { usleep(50_000) }
        }
        #expect(stopped, "the sync did not reach the failpoint")
        let gc = s.on(target, ["store", "gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        kill(pid, SIGCONT)
        #expect(waitForExit(pid) == 0)
        #expect(s.images(target) == ["test/big:1", "test/busybox:oci"])
        #expect(s.on(target, ["verify", "test/big:1"]).status == 0 && s.on(target, ["verify", "test/busybox:oci"]).status == 0)
        #expect(s.verify(target).ok)
    }

    @Test func aProtocolMismatchOrAFarEndThatCannotStartIsAClearError() throws {
        let s = try SyncRepos(images: ["test/busybox:oci"], big: false)
        let target = s.target()
        let r = s.run(["sync", target], ["UDOCKER_SYNC_SERVE_PROTOCOL": "7"])
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr.contains("far end speaks sync protocol 7, this udocker speaks 1: use the same udocker version on both hosts"), "\(r.stderr)")
        #expect(s.images(target).isEmpty)

        let broken = s.source.tmp + "/broken-ssh"
        try writeFile(broken, "echo 'sh: 1: udocker: not found' >&2\nexit 127\n")
        let gone = s.run(["sync", "--ssh=/bin/sh " + broken, "ssh://far/data/repo"])
        #expect(gone.status == 1, "\(gone)")
        #expect(gone.stderr.contains("Error: there is no udocker 'udocker' on the far host of ssh://far/data/repo (sh: 1: udocker: not found): give its path with --remote-udocker=PATH, or add --install-remote"), "\(gone.stderr)")
        // Another early end keeps the far end's own words and status.
        try writeFile(broken, "echo 'far: out of memory' >&2\nexit 3\n")
        let died = s.run(["sync", "--ssh=/bin/sh " + broken, "ssh://far/data/repo"])
        #expect(died.stderr.contains("ended before it answered: it exited with status 3; it said: far: out of memory"), "\(died.stderr)")
    }
}
