// `run` applies the image's metadata as Docker does (Entrypoint, Cmd, Env, WorkingDir, User), and a
// container made in `auto` mode lets `run --user=root` install a package with dpkg (issue 4).
import TestSupport
import Testing
import CAS
import Foundation

@Suite struct RunMetadataTests {
    final class Repo {
        let tmp = makeTempDirectory("runmeta")
        var env: [String: String] { ["UDOCKER_DIR": tmp + "/repo"] }
        deinit { try? FileIO.removeTree(tmp) }
        func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) { runUdocker(args, env: env) }

        func container(_ spec: HostImageSpec, name: String = "c", extra: [String] = []) throws {
            let l = run(["load", "-i", try HostImage.shared(spec)])
            try #require(l.status == 0, "\(l.stderr)")
            let c = run(["create", "--name=\(name)"] + extra + [spec.name])
            try #require(c.status == 0, "\(c.stderr)")
        }
    }

    @Test func cmdEnvWorkdirAndUserFromTheImage() throws {
        let r = Repo()
        try r.container(HostImageSpec(name: "meta:1", extraEnv: ["EXTRA=image"], workingDir: "/home/tester",
                                      cmd: ["/bin/sh", "-c", "echo $IMAGE_VAR $EXTRA; pwd; id -un; id -u"], user: "tester"))
        let d = r.run(["run", "--nobanner", "c"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(d.stdout == "from-image image\n/home/tester\ntester\n1000\n", "\(d.stdout)")
        // Options override the metadata: -e over Env, -w over WorkingDir, --user over User.
        let o = r.run(["run", "--nobanner", "-e", "EXTRA=option", "-w", "/tmp", "--user=root", "c",
                       "/bin/sh", "-c", "echo $IMAGE_VAR $EXTRA; pwd; id -un"])
        #expect(o.stdout == "from-image option\n/tmp\nroot\n", "\(o)")
        // --nometa ignores all of it (the default command is udocker's bash -i, fed from stdin).
        let n = runUdocker(["run", "--nobanner", "--nometa", "c"], env: r.env, stdin: Array("echo [$IMAGE_VAR] $(id -un) $PWD\n".utf8))
        #expect(n.status == 0 && n.stdout.contains("[] root /"), "\(n)")
    }

    @Test func entrypointWithCmdAndArguments() throws {
        let r = Repo()
        try r.container(HostImageSpec(name: "ep:1", cmd: ["default", "args"], entrypoint: ["/bin/echo", "ep:"]))
        #expect(r.run(["run", "--nobanner", "c"]).stdout == "ep: default args\n")
        #expect(r.run(["run", "--nobanner", "c", "given"]).stdout == "ep: given\n")
        // --entrypoint replaces the image's, and the image's Cmd with it when arguments are given.
        #expect(r.run(["run", "--nobanner", "--entrypoint=/bin/printf", "c", "%s-%s\\n", "a", "b"]).stdout == "a-b\n")
        // An empty --entrypoint leaves the image's Cmd as the command.
        let e = r.run(["run", "--nobanner", "--entrypoint=", "c", "/bin/echo", "plain"])
        #expect(e.stdout == "plain\n", "\(e)")
    }

    @Test func autoModeContainerInstallsAPackageWithDpkg() throws {
        let r = Repo()
        try r.container(HostImageSpec(name: "deb:1", withDpkg: true))
        let deb = try HostImage.buildDeb(name: "udocker-hello", version: "1.0",
                                         files: ["/usr/share/udocker-hello/hello.txt": "hello from a package\n"], into: r.tmp)
        let install = r.run(["run", "--nobanner", "--user=root", "-v", "\(deb):/tmp/hello.deb", "c", "dpkg", "-i", "/tmp/hello.deb"])
        #expect(install.status == 0, "\(install.stdout)\(install.stderr)")
        let status = r.run(["run", "--nobanner", "c", "dpkg-query", "-W", "-f=${Status} ${Version}\\n", "udocker-hello"])
        #expect(status.stdout == "install ok installed 1.0\n", "\(status)")
        let file = r.run(["run", "--nobanner", "c", "cat", "/usr/share/udocker-hello/hello.txt"])
        #expect(file.stdout == "hello from a package\n", "\(file)")
        // The store is unchanged: the image verifies and a second container does not have the package.
        #expect(r.run(["verify", "deb:1"]).status == 0)
        let c2 = r.run(["create", "--name=c2", "deb:1"])
        #expect(c2.status == 0)
        let other = r.run(["run", "--nobanner", "c2", "dpkg-query", "-W", "udocker-hello"])
        #expect(other.status != 0, "\(other)")
    }
}
