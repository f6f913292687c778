// The store as a user drives it with `udocker store …`: concurrent processes, kill -9 at every
// failpoint and at random moments, wrong digests, a lost index, GC, tampering and hostile layers.
import Foundation
import Testing
import TestSupport
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// A temporary HOME with a repository in it, removed at the end.
private final class Sandbox: @unchecked Sendable {
    let dir: String
    var repo: String { dir + "/repo" }
    var storeDir: String { repo + "/store" }
    var env: [String: String] { ["HOME": dir] }

    init(_ label: String) throws {
        dir = makeTempDirectory(label)
        let r = runUdocker(["mkrepo", repo], env: env)
        try #require(r.status == 0, "mkrepo failed: \(r.stderr)")
    }

    deinit { try? FileIO.removeTree(dir) }

    func udocker(_ args: [String], extraEnv: [String: String] = [:], stdin: [UInt8]? = nil)
        -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(["--repo=" + repo] + args, env: env.merging(extraEnv) { $1 }, stdin: stdin)
    }

    /// Writes `size` pseudo-random bytes to a file in the sandbox and returns its path.
    func randomFile(_ name: String, size: Int, seed: UInt64) throws -> String {
        var rng = SplitMix(seed: seed)
        var bytes = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 8) {
            var v = rng.next()
            for j in i..<min(i + 8, size) { bytes[j] = UInt8(truncatingIfNeeded: v); v >>= 8 }
        }
        let path = dir + "/" + name
        try FileIO.writeAtomically(path, bytes)
        return path
    }

    /// Regular blob files in the store (not their media-type side files).
    func blobFiles() throws -> [String] {
        let layout = StoreLayout(root: storeDir)
        var out = [String]()
        for prefix in try FileIO.listDirectory(layout.blobsDir) {
            for name in try FileIO.listDirectory(layout.blobsDir + "/" + prefix) where name.count == 64 {
                out.append(name)
            }
        }
        return out.sorted()
    }

    func tmpEntries() throws -> [String] {
        try FileIO.listDirectory(StoreLayout(root: storeDir).tmpDir)
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func digestOf(_ line: String) -> String {
    String(line.split(separator: " ").first ?? "")
}

@Suite("udocker store")
struct StoreCommandTests {
    @Test func eightProcessesIngestingOneBlobLeaveOneFileAndOneRecord() throws {
        let box = try Sandbox("store-dedup")
        let file = try box.randomFile("blob.bin", size: 8 << 20, seed: 1)
        let results = LockedBox<[(status: Int32, stdout: String, stderr: String)]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let r = box.udocker(["store", "ingest", file])
            results.update { $0.append(r) }
        }
        let all = results.get()
        #expect(all.count == 8)
        for r in all { #expect(r.status == 0, "ingest failed: \(r.stderr)") }
        let digests = Set(all.map { digestOf($0.stdout) })
        #expect(digests.count == 1)
        let hex = try #require(digests.first).replacingOccurrences(of: "sha256:", with: "")
        #expect(try box.blobFiles() == [hex])
        #expect(try box.tmpEntries().isEmpty)
        let dump = try Store.open(at: box.storeDir).dumpIndex()
        #expect(dump.filter { $0.hasPrefix("blob ") && $0.contains(hex) }.count == 1, "\(dump)")
    }

    @Test(arguments: ["ingest-mid-write", "ingest-before-rename", "ingest-after-rename", "index-mid-txn"])
    func killedIngestLeavesAStoreThatVerifies(failpoint: String) throws {
        let box = try Sandbox("store-kill")
        let file = try box.randomFile("blob.bin", size: 3 << 20, seed: 2)
        let killed = box.udocker(["store", "ingest", file], extraEnv: ["UDOCKER_FAILPOINT": failpoint])
        #expect(killed.status == 128 + SIGKILL, "the failpoint did not fire: \(killed)")
        let verify = box.udocker(["store", "verify"])
        #expect(verify.status == 0, "verify after kill at \(failpoint): \(verify.stdout) \(verify.stderr)")
        let again = box.udocker(["store", "ingest", file])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try box.blobFiles().count == 1)
        #expect(box.udocker(["store", "verify"]).status == 0)
        #expect(try box.tmpEntries().isEmpty)
    }

    @Test func killedUnpackLeavesAStoreThatVerifies() throws {
        let box = try Sandbox("store-kill-unpack")
        let tar = try makeLayerTar(in: box.dir)
        let digest = digestOf(box.udocker(["store", "ingest", tar]).stdout)
        let killed = box.udocker(["store", "unpack", digest], extraEnv: ["UDOCKER_FAILPOINT": "unpack-mid"])
        #expect(killed.status == 128 + SIGKILL)
        #expect(box.udocker(["store", "verify"]).status == 0)
        let unpack = box.udocker(["store", "unpack", digest])
        #expect(unpack.status == 0, "\(unpack.stderr)")
        #expect(box.udocker(["store", "verify"]).status == 0)
    }

    @Test func kill9AtRandomMomentsOfALargeIngest() throws {
        let box = try Sandbox("store-kill-random")
        let file = try box.randomFile("big.bin", size: 96 << 20, seed: 3)
        for delay in [2_000, 15_000, 40_000, 90_000, 160_000] as [UInt32] {
            let pid = startUdocker(["--repo=" + box.repo, "store", "ingest", file], env: box.env)
            usleep(delay)
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
            let verify = box.udocker(["store", "verify"])
            #expect(verify.status == 0, "after kill at \(delay)µs: \(verify.stdout) \(verify.stderr)")
        }
        let done = box.udocker(["store", "ingest", file])
        #expect(done.status == 0, "\(done.stderr)")
        #expect(try box.blobFiles().count == 1)
        #expect(try box.tmpEntries().isEmpty)
    }

    @Test func aWrongDigestStoresNothingAndSaysBothDigests() throws {
        let box = try Sandbox("store-wrong")
        let file = try box.randomFile("blob.bin", size: 100_000, seed: 4)
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        let r = box.udocker(["store", "ingest", "--digest=" + wrong, file])
        #expect(r.status == 1)
        #expect(r.stderr.contains(wrong))
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(try box.blobFiles().isEmpty)
        #expect(try box.tmpEntries().isEmpty)
    }

    @Test func aDeletedIndexIsRebuiltWithTheSameContent() throws {
        let box = try Sandbox("store-index")
        let tar = try makeLayerTar(in: box.dir)
        let digest = digestOf(box.udocker(["store", "ingest", tar]).stdout)
        #expect(box.udocker(["store", "unpack", digest]).status == 0)
        _ = box.udocker(["store", "ingest", try box.randomFile("b2", size: 5000, seed: 5)])
        let before = try Store.open(at: box.storeDir).dumpIndex()
        try FileIO.removeTree(StoreLayout(root: box.storeDir).localIndexDir)
        let stats = box.udocker(["store", "stats"])
        #expect(stats.status == 0, "\(stats.stderr)")
        #expect(stats.stdout.contains("blobs: 2"))
        #expect(try Store.open(at: box.storeDir).dumpIndex() == before)
    }

    @Test func gcRemovesExactlyWhatNothingReferences() throws {
        let box = try Sandbox("store-gc")
        let kept = digestOf(box.udocker(["store", "ingest", try box.randomFile("a", size: 7000, seed: 6)]).stdout)
        let gone = digestOf(box.udocker(["store", "ingest", try box.randomFile("b", size: 7000, seed: 7)]).stdout)
        try Store.open(at: box.storeDir).setRef(holder: "repo/test/image/kept:latest",
                                                 digests: [try Digest(parsing: kept)])
        let dry = box.udocker(["store", "gc", "--dry-run"])
        #expect(dry.stdout.contains("would remove blob " + gone))
        #expect(!dry.stdout.contains(kept))
        #expect(try box.blobFiles().count == 2)
        let gc = box.udocker(["store", "gc"])
        #expect(gc.status == 0)
        #expect(try box.blobFiles() == [kept.replacingOccurrences(of: "sha256:", with: "")])
        #expect(box.udocker(["store", "verify"]).status == 0)
    }

    @Test func verifyFindsATamperedBlobAndRepairRemovesIt() throws {
        let box = try Sandbox("store-tamper")
        let d = digestOf(box.udocker(["store", "ingest", try box.randomFile("a", size: 9000, seed: 8)]).stdout)
        let path = StoreLayout(root: box.storeDir).blobPath(try Digest(parsing: d))
        #expect(chmod(path, 0o644) == 0)
        var bytes = try FileIO.readFile(path)
        bytes[100] ^= 0xFF
        let fd = open(path, O_WRONLY)
        try #require(fd >= 0)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        let verify = box.udocker(["store", "verify"])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains(d.replacingOccurrences(of: "sha256:", with: "").prefix(12)))
        let repair = box.udocker(["store", "verify", "--repair"])
        #expect(repair.status == 0, "\(repair.stdout)")
        #expect(try box.blobFiles().isEmpty)
        #expect(box.udocker(["store", "verify"]).status == 0)
    }

    @Test func aHostileLayerIsUnpackedWithoutTouchingTheHost() throws {
        let box = try Sandbox("store-hostile")
        let outside = makeTempDirectory("store-hostile-outside")
        defer { try? FileIO.removeTree(outside) }
        let tar = box.dir + "/hostile.tar"
        // Python's tarfile writes the entries GNU tar refuses to create.
        let script = """
        import io, tarfile, sys
        out, outside = sys.argv[1], sys.argv[2]
        with tarfile.open(out, "w") as t:
            def add(name, data=b"x", **kw):
                i = tarfile.TarInfo(name); i.size = len(data)
                for k, v in kw.items(): setattr(i, k, v)
                t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)
            add("../../../../.." + outside + "/dotdot")
            add("evil", type=tarfile.SYMTYPE, linkname=outside)
            add("evil/through-symlink")
            add("hard", type=tarfile.LNKTYPE, linkname="/etc/passwd")
            add("dev/null-ish", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
            add("ok.txt", b"fine")
        """
        _ = try runCommand("/usr/bin/python3", ["-c", script, tar, outside])
        let digest = digestOf(box.udocker(["store", "ingest", tar]).stdout)
        let r = box.udocker(["store", "unpack", digest])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileIO.listDirectory(outside).isEmpty)
        #expect(r.stderr.contains("through-symlink"))
        #expect(r.stderr.contains("device node"))
        var st = stat()
        #expect(stat("/etc/passwd", &st) == 0 && st.st_nlink == 1)
        #expect(box.udocker(["store", "verify"]).status == 0)
    }
}

/// A small gzip'd layer built with GNU tar from a directory of a few files.
private func makeLayerTar(in dir: String) throws -> String {
    let root = dir + "/layer-root"
    try FileIO.mkdirs(root + "/usr/bin")
    try FileIO.mkdirs(root + "/etc")
    try FileIO.writeAtomically(root + "/etc/hostname", Array("demo\n".utf8))
    for i in 0..<50 {
        try FileIO.writeAtomically(root + "/usr/bin/tool\(i)", Array(String(repeating: "x", count: 1000 + i).utf8), mode: 0o755)
    }
    let tar = dir + "/layer.tar.gz"
    _ = try runCommand("/bin/tar", ["-C", root, "-czf", tar, "."])
    return tar
}
