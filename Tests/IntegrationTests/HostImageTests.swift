// Checks the host-program image (TestSupport's HostImage) for real: loaded and created with the udocker
// binary, then run in the container's ROOT with the host's proot and fakechroot directly (not `udocker run`).
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository of its own, removed at the end.
private final class HostRepo {
    let tmp: String
    var repo: String { tmp + "/repo" }

    let extra: [String: String]

    /// `extra`: more environment for every command.
    init(_ extra: [String: String] = [:]) {
        tmp = makeTempDirectory("hostimage-test")
        self.extra = extra
    }
    deinit { try? FileIO.removeTree(tmp) }

    func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: ["UDOCKER_DIR": repo].merging(extra) { $1 })
    }

    /// Loads the image of `spec` and returns `load`'s result.
    func load(_ spec: HostImageSpec) throws -> (status: Int32, stdout: String, stderr: String) {
        run(["load", "-i", try HostImage.shared(spec)])
    }

    /// Creates container `name` from `image` and returns its ROOT (as `inspect -p` prints it).
    func create(_ name: String, _ image: String = "hostimg:latest") throws -> String {
        let c = run(["create", "--name=\(name)", image])
        try #require(c.status == 0, "create: \(c.stderr)")
        let p = run(["inspect", "-p", name])
        try #require(p.status == 0, "inspect -p: \(p.stderr)")
        return p.stdout.trimmingCharacters(in: .newlines)
    }
}

/// The environment programs get inside the container (proot passes the caller's on).
private let guestEnvironment = ["PATH": HostImage.path, "HOME": "/root", "LC_ALL": "C"]

private func proot(_ args: [String], seccomp: Bool = true) -> (status: Int32, stdout: String, stderr: String) {
    var env = guestEnvironment
    if !seccomp { env["PROOT_NO_SECCOMP"] = "1" }
    return spawnAndCollect(["/usr/bin/proot"] + args, environment: env, stdin: nil)
}

private func fileText(_ path: String) -> String? {
    (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
}

private func linkTarget(_ path: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: path)
}

private func fileType(_ path: String) -> mode_t? {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : nil
}

@Suite("HostImage") struct HostImageTests {
    @Test func loadsUnderItsNameWithTheConfigAndADebianShapedRoot() throws {
        let r = HostRepo()
        let spec = HostImageSpec(name: "hostimg:cfg", extraEnv: ["EXTRA=1"], workingDir: "/home/tester",
                                 cmd: ["-c", "echo hi"], entrypoint: ["/bin/sh"], user: "tester")
        let load = try r.load(spec)
        #expect(load.status == 0, "\(load.stderr)")
        #expect(r.run(["images"]).stdout.contains("hostimg:cfg"))
        let inspect = r.run(["inspect", "hostimg:cfg"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        for wanted in ["PATH=\(HostImage.path)", "IMAGE_VAR=from-image", "EXTRA=1", "/home/tester", "echo hi", "tester"] {
            #expect(inspect.stdout.contains(wanted), "\(wanted) not in \(inspect.stdout)")
        }

        let root = try r.create("c1", "hostimg:cfg")
        for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
            #expect(linkTarget(root + "/" + link) == target, "\(link)")
        }
        let loader = try HostImage.loader()
        #expect(fileType(root + loader) == S_IFREG, "\(loader)")
        #expect(fileType(root + "/usr/lib64/ld-linux-x86-64.so.2") == S_IFLNK)
        #expect(fileType(root + "/usr/bin/sh") == S_IFLNK && linkTarget(root + "/usr/bin/sh") == "dash")
        for p in HostImage.basePrograms {
            #expect(FileIO.exists(root + "/usr/bin/" + p), "\(p) missing")
        }
        var st = stat()
        #expect(stat(root + "/tmp", &st) == 0 && st.st_mode & 0o7777 == 0o1777)
        #expect(stat(root + "/var/tmp", &st) == 0 && st.st_mode & 0o7777 == 0o1777)
        #expect(FileIO.isDirectory(root + "/home/tester") && FileIO.isDirectory(root + "/root"))
        #expect(fileText(root + "/etc/passwd")?.contains("tester:x:1000:1000:tester:/home/tester:/bin/sh\n") == true)
        #expect(fileText(root + "/etc/group")?.contains("tester:x:1000:\n") == true)
        #expect(fileText(root + "/etc/hostname") == "hostimg\n")
    }

    @Test(arguments: [true, false]) func prootRunsTheHostProgramsInTheContainer(seccomp: Bool) throws {
        let r = HostRepo()
        #expect(try r.load(HostImageSpec()).status == 0)
        let root = try r.create("c1")
        // Each program by its file in /bin (dash would otherwise run its own echo, pwd, true, test, printf).
        let script = """
            set -e
            /bin/echo hi
            cd /tmp && /bin/pwd
            /bin/true; if /bin/false; then exit 9; fi
            /bin/sleep 0
            /bin/mkdir /tmp/d && /bin/touch /tmp/d/a && /bin/ln -s a /tmp/d/l && /bin/readlink /tmp/d/l
            /bin/cp /tmp/d/a /tmp/d/b && /bin/mv /tmp/d/b /tmp/kept && /bin/chmod 600 /tmp/kept
            /bin/printf '%s\\n' abc | /bin/sha256sum
            /bin/head -1 /etc/passwd
            /bin/test -d /usr && /bin/[ -f /etc/hostname ] && /bin/echo tests-ok
            /bin/uname -s
            /bin/grep -c tester /etc/passwd
            /bin/echo abc | /bin/sed s/b/X/
            /bin/bash -c 'echo "bash ${BASH_VERSINFO[0]}"'
            /bin/id -u
            /bin/env | /bin/grep '^HOME='
            /bin/rm -r /tmp/d
            /bin/ls /
            # Debian 12's proot 5.1.0 passes statx(2) through untranslated: `stat FILE` and `ls -l` see
            # the host's files, so stat only shows that it starts.
            /bin/stat --version
            """
        let run = proot(["-r", root, "-w", "/", "/bin/sh", "-c", script], seccomp: seccomp)
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let expectedStart = ["hi", "/tmp", "a",
                             "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb  -",
                             "root:x:0:0:root:/root:/bin/sh", "tests-ok", "Linux", "1", "aXc"]
        #expect(Array(lines.prefix(expectedStart.count)) == expectedStart, "\(run.stdout)\n\(run.stderr)")
        #expect(lines.contains { $0.hasPrefix("bash ") && $0 != "bash " })
        #expect(lines.contains(String(geteuid())))
        #expect(lines.contains("HOME=/root"))
        for top in ["bin", "etc", "home", "lib", "lib64", "root", "sbin", "tmp", "usr", "var"] {
            #expect(lines.contains(top), "\(top) not listed by ls /")
        }
        #expect(lines.contains { $0.hasPrefix("stat (GNU coreutils)") })
        #expect(!FileIO.exists(root + "/tmp/d"))
        var st = stat()
        #expect(lstat(root + "/tmp/kept", &st) == 0 && st.st_mode & 0o777 == 0o600)

        #expect(proot(["-r", root, "-w", "/", "/bin/false"], seccomp: seccomp).status == 1)
        #expect(proot(["-r", root, "-w", "/", "/bin/sh", "-c", "exit 3"], seccomp: seccomp).status == 3)
        let missing = proot(["-r", root, "-w", "/", "/bin/sh", "-c", "/bin/nothing-here"], seccomp: seccomp)
        #expect(missing.status == 127 && missing.stderr.contains("not found"), "\(missing.stderr)")
    }

    @Test func prootFakeRootSeesRootAndTheImageUsers() throws {
        let r = HostRepo()
        #expect(try r.load(HostImageSpec()).status == 0)
        let root = try r.create("c1")
        let run = proot(["-0", "-r", root, "-w", "/", "/bin/sh", "-c",
                         "id; whoami; /bin/id -un 1000; /bin/id -gn nobody; /bin/touch /root/made-here"])
        #expect(run.status == 0, "\(run.stderr)")
        // proot -0 fakes the uid and gid only: an unprivileged caller keeps its supplementary groups.
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("uid=0(root) gid=0(root) groups=0(root)") == true, "\(run.stdout)")
        #expect(Array(lines.dropFirst()) == ["root", "tester", "nogroup"], "\(run.stdout)")
        #expect(FileIO.exists(root + "/root/made-here"))
    }

    @Test func dpkgInstallsAndRemovesALocalDebAsFakeRoot() throws {
        // Unsealed: proot is run by hand here, without the library `run` preloads to turn dpkg's
        // refused backup link of a sealed file into a copy (StoreProtectionTests has that).
        let r = HostRepo(["UDOCKER_STORE_PROTECTION": "detect"])
        let hello = "/usr/share/udocker-hello/hello.txt"
        let spec = HostImageSpec(name: "hostimg:dpkg", withDpkg: true, files: [hello: "from the image\n"])
        let load = try r.load(spec)
        #expect(load.status == 0, "\(load.stderr)")
        let root = try r.create("c1", "hostimg:dpkg")
        let other = try r.create("c2", "hostimg:dpkg")
        let deb = try HostImage.buildDeb(name: "udocker-hello", version: "1.0",
                                         files: [hello: "hello from the package\n"], into: r.tmp)

        // /usr is linked from the store: dpkg replaces the image's hello.txt by renaming over it.
        let install = proot(["-0", "-r", root, "-w", "/", "-b", deb + ":/tmp/hello.deb", "dpkg", "-i", "/tmp/hello.deb"])
        #expect(install.status == 0, "\(install.stdout)\n\(install.stderr)")
        #expect(install.stdout.contains("Setting up udocker-hello (1.0) ..."), "\(install.stdout)")
        let status = proot(["-0", "-r", root, "-w", "/", "dpkg", "-s", "udocker-hello"])
        #expect(status.status == 0 && status.stdout.contains("Status: install ok installed\n"), "\(status.stdout)\(status.stderr)")
        let listed = proot(["-0", "-r", root, "-w", "/", "dpkg", "-L", "udocker-hello"])
        #expect(listed.stdout.split(separator: "\n").contains(Substring(hello)), "\(listed.stdout)")
        #expect(proot(["-r", root, "-w", "/", "/bin/cat", hello]).stdout == "hello from the package\n")
        #expect(fileText(root + hello) == "hello from the package\n")
        // The store's copy, which the other container links, is unchanged.
        #expect(fileText(other + hello) == "from the image\n")
        #expect(proot(["-r", other, "-w", "/", "dpkg", "-s", "udocker-hello"]).status == 1)

        let remove = proot(["-0", "-r", root, "-w", "/", "dpkg", "-r", "udocker-hello"])
        #expect(remove.status == 0, "\(remove.stdout)\n\(remove.stderr)")
        #expect(!FileIO.exists(root + hello))
        #expect(fileText(other + hello) == "from the image\n")
    }

    @Test func fakechrootRunsTheImagesPrograms() throws {
        let lib = "/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so"
        try #require(FileIO.exists(lib), "fakechroot is not installed on this host")
        let r = HostRepo()
        #expect(try r.load(HostImageSpec()).status == 0)
        let root = try r.create("c1")
        let script = "echo hi; /bin/cat /etc/hostname; /bin/ls /; /bin/readlink -f /bin/sh"

        // The fakechroot command's way: chroot(2) is faked, then programs run from the container.
        var env = guestEnvironment
        env["LD_PRELOAD"] = lib
        let chrooted = spawnAndCollect(["/usr/sbin/chroot", root, "/bin/sh", "-c", script], environment: env, stdin: nil)
        #expect(chrooted.status == 0, "\(chrooted.stderr)")
        #expect(chrooted.stdout.hasPrefix("hi\nhostimg\n") && chrooted.stdout.contains("\netc\n")
                && chrooted.stdout.hasSuffix("\n/usr/bin/dash\n"), "\(chrooted.stdout)\(chrooted.stderr)")

        // udocker's F modes' way: FAKECHROOT_BASE set, every program started by the image's loader.
        let loader = root + (try HostImage.loader())
        let libs = root + (try HostImage.libraryDirectory())
        env["FAKECHROOT_BASE"] = root
        env["FAKECHROOT_ELFLOADER"] = loader
        env["FAKECHROOT_ELFLOADER_OPT_ARGV0"] = "--argv0"
        env["LD_LIBRARY_PATH"] = libs
        let loaded = spawnAndCollect([loader, "--library-path", libs, root + "/bin/sh", "-c", script],
                                     environment: env, stdin: nil)
        #expect(loaded.status == 0, "\(loaded.stderr)")
        #expect(loaded.stdout.hasPrefix("hi\nhostimg\n") && loaded.stdout.contains("\netc\n")
                && loaded.stdout.hasSuffix("\n/usr/bin/dash\n"), "\(loaded.stdout)\(loaded.stderr)")
    }
}
