// The Fakechroot modes F1-F4 through the udocker binary (host libfakechroot and patchelf, HostImage):
// setup --execmode, run and its options, F3 files restored byte for byte, a moved F3 container.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository of its own with the Fakechroot test image loaded, removed at the end.
private final class FakeRepo {
    let tmp: String
    var repo: String

    static let spec = HostImageSpec(
        name: "hostimg:fc", extraEnv: ["IMG_ONLY=from-image-env"], workingDir: "/home/tester",
        cmd: ["/bin/sh", "-c", "echo cmd-ran; pwd; echo $IMAGE_VAR $IMG_ONLY"],
        scripts: ["/usr/local/bin/hello": "#!/bin/sh\necho hello \"$@\" from $0\n"])

    init(storeOutside: Bool = false) throws {
        tmp = makeTempDirectory("fakechroot-test")
        repo = tmp + "/repo"
        if storeOutside {
            let m = runUdocker(["mkrepo", "--store=" + tmp + "/store", repo])
            try #require(m.status == 0, "mkrepo: \(m.stderr)")
        }
        let load = run(["load", "-i", try HostImage.shared(Self.spec)])
        try #require(load.status == 0, "load: \(load.stderr)")
    }

    deinit {
        _ = chmod(tmp, 0o700)
        try? FileIO.removeTree(tmp)
    }

    func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: ["UDOCKER_DIR": repo])
    }

    /// Creates container `name` and returns its ROOT.
    @discardableResult
    func create(_ name: String, _ extra: [String] = []) throws -> String {
        let c = run(["create", "--name=\(name)"] + extra + ["hostimg:fc"])
        try #require(c.status == 0, "create: \(c.stderr)")
        return root(name)
    }

    func root(_ name: String) -> String {
        run(["inspect", "-p", name]).stdout.trimmingCharacters(in: .newlines)
    }

    /// Creates container `name` in `mode`.
    @discardableResult
    func container(_ name: String, mode: String, _ extra: [String] = []) throws -> String {
        let root = try create(name, extra)
        let s = run(["setup", "--execmode=\(mode)", name])
        try #require(s.status == 0, "setup --execmode=\(mode): \(s.stdout)\(s.stderr)")
        return root
    }

    func lines(_ args: [String]) -> [String] {
        run(args).stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }
}

/// Every entry below `root`: type, mode, sha256 of regular files, symlink targets; and inodes. Leaves
/// out /etc/passwd and /etc/group, to which a run adds the host user's entry when they lack it.
private func snapshot(_ root: String) throws -> (content: [String: String], inodes: [String: UInt]) {
    var content: [String: String] = [:], inodes: [String: UInt] = [:]
    func walk(_ rel: String) throws {
        let p = root + rel
        var st = stat()
        guard lstat(p, &st) == 0 else { return }
        let mode = String(st.st_mode & 0o7777, radix: 8)
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            content[rel.isEmpty ? "/" : rel] = "dir \(mode)"
            for n in try FileIO.listDirectory(p) { try walk(rel + "/" + n) }
        case S_IFLNK:
            content[rel] = "link " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: p)) ?? "?")
        case S_IFREG:
            content[rel] = "file \(mode) " + (try SHA256Hasher.hash(fileAt: p)).0.hex
            inodes[rel] = UInt(st.st_ino)
        default:
            content[rel] = "other"
        }
    }
    try walk("")
    for p in ["/etc/passwd", "/etc/group"] {
        content[p] = nil
        inodes[p] = nil
    }
    return (content, inodes)
}

private func text(_ path: String) -> String? {
    (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
}

private let fakechrootAvailable = FileIO.exists("/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so")
    || FileIO.exists("/usr/lib/aarch64-linux-gnu/fakechroot/libfakechroot.so")

@Suite("Fakechroot", .enabled(if: fakechrootAvailable, "the host has no libfakechroot (Debian package fakechroot)"))
struct FakechrootTests {
    static let modes = ["F1", "F2", "F3", "F4"]

    @Test(arguments: modes) func runsCommandsWithTheirOutputAndExitCode(mode: String) throws {
        let r = try FakeRepo()
        try r.container("c", mode: mode)
        let run = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "echo x; /bin/echo child $0; exit 3"])
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stdout == "x\nchild /bin/sh\n", "\(run.stderr)")

        // The container's root is /: its directories, not the host's.
        let ls = r.lines(["run", "--nobanner", "c", "/bin/ls", "/"])
        for top in ["bin", "etc", "home", "usr", "tmp"] { #expect(ls.contains(top), "\(top) not in \(ls)") }
        #expect(!ls.contains("work") && !ls.contains("opt"), "\(ls)")
        #expect(r.run(["run", "--nobanner", "c", "/bin/cat", "/etc/hostname"]).stdout == "hostimg\n")

        // A script of the image, found in PATH, with its #! interpreter from the container.
        let hello = r.run(["run", "--nobanner", "c", "hello", "a", "b"])
        #expect(hello.status == 0 && hello.stdout == "hello a b from /usr/local/bin/hello\n", "\(hello.stdout)\(hello.stderr)")
        #expect(r.run(["run", "--nobanner", "c", "/bin/false"]).status == 1)
        let missing = r.run(["run", "--nobanner", "c", "/bin/nothing-here"])
        #expect(missing.status == 2 && missing.stderr.contains("command not found"), "\(missing.stderr)")
        let ports = r.run(["run", "--nobanner", "-p", "8080:80", "c", "/bin/true"])
        #expect(ports.status == 0 && ports.stderr.contains("-p/--publish is not supported"), "\(ports.stderr)")
    }

    @Test(arguments: modes) func imageDefaultsEntrypointWorkdirAndEnvironment(mode: String) throws {
        let r = try FakeRepo()
        try r.container("c", mode: mode)
        // The image's Cmd, WorkingDir and Env.
        let defaults = r.run(["run", "--nobanner", "c"])
        #expect(defaults.status == 0, "\(defaults.stderr)")
        #expect(defaults.stdout == "cmd-ran\n/home/tester\nfrom-image from-image-env\n", "\(defaults.stderr)")

        let ep = r.run(["run", "--nobanner", "--entrypoint=/bin/echo", "c", "a", "b"])
        #expect(ep.status == 0 && ep.stdout == "a b\n", "\(ep.stdout)\(ep.stderr)")

        let envFile = r.tmp + "/env.list"
        try Data("# comment\nFILE_VAR=from file\n\nIMG_ONLY=file-wins\n".utf8).write(to: URL(fileURLWithPath: envFile))
        let env = r.run(["run", "--nobanner", "-w", "/tmp", "-e", "IMAGE_VAR=over", "-e", "NEW=1", "--env-file=" + envFile,
                         "c", "/bin/sh", "-c", "/bin/pwd; echo $IMAGE_VAR $NEW $FILE_VAR $IMG_ONLY"])
        #expect(env.status == 0, "\(env.stderr)")
        #expect(env.stdout == "/tmp\nover 1 from file file-wins\n", "\(env.stderr)")
        let badWorkdir = r.run(["run", "--nobanner", "-w", "/no/such/dir", "c", "/bin/true"])
        #expect(badWorkdir.status == 2 && badWorkdir.stderr.contains("invalid working directory"), "\(badWorkdir.stderr)")
    }

    @Test(arguments: modes) func volumesAtTheSameAndAtAnotherPath(mode: String) throws {
        let r = try FakeRepo()
        let root = try r.container("c", mode: mode)
        let a = r.tmp + "/vol-a", same = r.tmp + "/same"
        for d in [a, same] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Data("from host\n".utf8).write(to: URL(fileURLWithPath: a + "/host.txt"))
        try Data("same path\n".utf8).write(to: URL(fileURLWithPath: same + "/h2"))

        let run = r.run(["run", "--nobanner", "-v", a + ":/data", "-v", same, "-w", "/data", "c", "/bin/sh", "-c",
                         "pwd; /bin/cat /data/host.txt; echo inside > /data/made.txt; /bin/cat \(same)/h2; echo two > \(same)/made2; /bin/ls /data"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "/data\nfrom host\nsame path\nhost.txt\nmade.txt\n", "\(run.stdout)\(run.stderr)")
        #expect(text(a + "/made.txt") == "inside\n")
        #expect(text(same + "/made2") == "two\n")

        // Another host directory at the same container path in a later run.
        let b = r.tmp + "/vol-b"
        try FileManager.default.createDirectory(atPath: b, withIntermediateDirectories: true)
        try Data("b\n".utf8).write(to: URL(fileURLWithPath: b + "/b.txt"))
        let second = r.run(["run", "--nobanner", "-v", b + ":/data", "c", "/bin/ls", "/data"])
        #expect(second.status == 0 && second.stdout == "b.txt\n", "\(second.stdout)\(second.stderr)")
        #expect(FileIO.exists(root + "/data"))
        // setup --purge removes what runs left in ROOT.
        #expect(r.run(["setup", "--purge", "c"]).status == 0)
        #expect(!FileIO.exists(root + "/data"))
        #expect(r.run(["run", "--nobanner", "-v", a + ":/data", "c", "/bin/true"]).status == 0)
        #expect(FileIO.exists(root + "/data"))
        // Without -v the container path is the container's again.
        #expect(r.run(["run", "--nobanner", "c", "/bin/ls", "/data"]).status != 0)
        #expect(!FileIO.exists(root + "/data"))

        // A container path that holds files cannot take a volume here: a clear refusal.
        let busy = r.run(["run", "--nobanner", "-v", a + ":/etc", "c", "/bin/true"])
        #expect(busy.status == 2 && busy.stderr.contains("not an empty directory"), "\(busy.stderr)")
    }

    @Test(arguments: modes) func identityIsTheHostUsers(mode: String) throws {
        let r = try FakeRepo()
        let root = try r.container("c", mode: mode)
        let other = try r.create("other")
        let linked = try r.container("linked", mode: mode, ["--materialize=link"])
        let uid = String(getuid())
        for (name, tree) in [("c", root), ("linked", linked)] {
            let run = r.lines(["run", "--nobanner", "--user=alice", name, "/bin/sh", "-c",
                               "/bin/id -u; echo $USER; /bin/grep ^alice: /etc/passwd"])
            #expect(run.count == 3 && run[0] == uid && run[1] == "alice", "\(run)")
            #expect(run.last?.hasPrefix("alice:x:\(uid):") == true, "\(run)")
            #expect(text(tree + "/etc/passwd")?.contains("\nalice:x:\(uid):") == true)
            if getuid() != 0 {
                #expect(r.lines(["run", "--nobanner", "--user=alice", name, "/bin/id", "-un"]) == ["alice"])
            }
        }
        // The entry went into the container's own file only: not into the image's (the store's).
        #expect(text(other + "/etc/passwd")?.contains("alice") == false)
        #expect(r.run(["store", "verify"]).status == 0)

        let asRoot = r.run(["run", "--nobanner", "--user=root", "c", "/bin/id", "-u"])
        #expect(asRoot.status == 0 && asRoot.stdout == uid + "\n", "\(asRoot.stdout)\(asRoot.stderr)")
        if getuid() != 0 { #expect(asRoot.stderr.contains("cannot run as root"), "\(asRoot.stderr)") }
    }

    @Test(arguments: modes) func rmRemovesTheContainerAfterTheRun(mode: String) throws {
        let r = try FakeRepo()
        try r.container("c", mode: mode)
        let run = r.run(["run", "--nobanner", "--rm", "c", "/bin/sh", "-c", "echo bye; exit 4"])
        #expect(run.status == 4 && run.stdout == "bye\n", "\(run.stderr)")
        #expect(!r.run(["ps"]).stdout.contains(" c"))
        #expect(r.run(["run", "c", "/bin/true"]).status == 1)
    }

    @Test func f3PatchesAndSwitchingBackRestoresEveryFileByteForByte() throws {
        let r = try FakeRepo()
        let root = try r.create("c")
        let before = try snapshot(root)

        let s = r.run(["setup", "--execmode=F3", "c"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout.contains("patched ") && s.stdout.contains("execmode: P1 -> F3"), "\(s.stdout)")
        let patched = try snapshot(root)
        let changed = before.content.keys.filter { before.content[$0] != patched.content[$0] }
        #expect(changed.contains("/usr/bin/dash") && changed.contains("/usr/bin/ls"), "\(changed.sorted())")
        #expect(r.run(["setup", "c"]).stdout == "execmode: F3\nnvidiamode: False\n")
        #expect(r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "/bin/echo patched-run"]).stdout == "patched-run\n")
        // The store's files were never written: the image and the store still verify.
        #expect(r.run(["verify", "hostimg:fc"]).status == 0)
        #expect(r.run(["store", "verify"]).status == 0)

        let back = r.run(["setup", "--execmode=P1", "c"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stdout.contains("restored \(changed.count) patched files byte for byte"), "\(back.stdout)")
        let after = try snapshot(root)
        #expect(after.content == before.content)
        // Files linked to the store are the store's files again (same inodes), not copies.
        #expect(after.inodes == before.inodes)
        #expect(r.run(["store", "verify"]).status == 0)
        #expect(r.run(["run", "--nobanner", "c", "/bin/echo", "p1"]).stdout == "p1\n")
    }

    @Test func movedF3ContainerIsRefusedUntilSetupForce() throws {
        let r = try FakeRepo(storeOutside: true)
        let root = try r.create("c")
        let before = try snapshot(root)
        #expect(r.run(["setup", "--execmode=F3", "c"]).status == 0)
        #expect(r.run(["run", "--nobanner", "c", "/bin/echo", "here"]).stdout == "here\n")

        let moved = r.tmp + "/moved"
        #expect(rename(r.repo, moved) == 0)
        let oldRoot = root
        r.repo = moved
        let refused = r.run(["run", "--nobanner", "c", "/bin/echo", "there"])
        #expect(refused.status == 1, "\(refused.stdout)")
        #expect(refused.stderr.contains("was set up at \(oldRoot)") && refused.stderr.contains("setup --force c"), "\(refused.stderr)")

        let fix = r.run(["setup", "--force", "c"])
        #expect(fix.status == 0, "\(fix.stderr)")
        #expect(fix.stdout.contains("patched ") && fix.stdout.contains(moved), "\(fix.stdout)")
        #expect(r.run(["run", "--nobanner", "c", "/bin/echo", "there"]).stdout == "there\n")

        #expect(r.run(["setup", "--execmode=P1", "c"]).status == 0)
        #expect(try snapshot(r.root("c")).content == before.content)
    }

    @Test func setupRefusesWhatCannotWork() throws {
        let r = try FakeRepo()
        try r.create("c")
        #expect(r.run(["setup", "--execmode=F9", "c"]).status == 1)
        #expect(r.run(["protect", "c"]).status == 0)
        let p = r.run(["setup", "--execmode=F3", "c"])
        #expect(p.status == 1 && p.stderr.contains("protected"), "\(p.stderr)")
        #expect(r.run(["unprotect", "c"]).status == 0)
        // F3 without patchelf: a clear error, and nothing changed.
        let noPatchelf = runUdocker(["setup", "--execmode=F3", "c"],
                                    env: ["UDOCKER_DIR": r.repo, "UDOCKER_USE_PATCHELF_EXECUTABLE": "/nonexistent/patchelf"])
        #expect(noPatchelf.status == 1 && noPatchelf.stderr.contains("patchelf"), "\(noPatchelf.stderr)")
        #expect(r.run(["setup", "c"]).stdout == "execmode: P1\nnvidiamode: False\n")
        // Another mode's execmode file is written as is.
        #expect(r.run(["setup", "--execmode=r1", "c"]).status == 0)
        #expect(r.run(["setup", "c"]).stdout == "execmode: R1\nnvidiamode: False\n")
    }
}
