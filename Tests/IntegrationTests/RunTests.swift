// `udocker run` in the PRoot modes through the binary: exit codes, volumes, working directory,
// environment, users, entrypoint, --rm, run of an image (pull and create), --location, signals,
// stdin and concurrent runs; with test/busybox:oci from the shared registry.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RunTests {
    /// A repository with a container `c` of test/busybox:oci.
    func container(_ extra: [String] = []) throws -> ImageRepo {
        let r = try ImageRepo()
        let pull = r.run(["pull", "test/busybox:oci"])
        try #require(pull.status == 0, "\(pull.stderr)")
        let c = r.run(["create", "--name=c"] + extra + ["test/busybox:oci"])
        try #require(c.status == 0, "\(c.stderr)")
        return r
    }

    func setMode(_ r: ImageRepo, _ mode: String) throws {
        let s = r.run(["setup", "--execmode=\(mode)", "c"])
        if s.status != 0 {
            // Until setup switches modes, the execmode file is what run reads.
            let root = r.run(["inspect", "-p", "c"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try FileIO.writeAtomically(FileIO.parent(of: root) + "/execmode", Array(mode.utf8))
        }
    }

    @Test(arguments: ["P1", "P2"])
    func outputExitCodeAndBanner(mode: String) throws {
        let r = try container()
        try setMode(r, mode)
        let run = r.run(["run", "c", "/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
        #expect(run.status == 7)
        #expect(run.stdout == "out\n", "\(run.stdout)")
        #expect(run.stderr.contains("STARTING") && run.stderr.contains("err\n"), "\(run.stderr)")
        let quiet = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "echo \"$container_execmode\""])
        #expect(quiet.status == 0 && quiet.stdout == mode + "\n" && !quiet.stderr.contains("STARTING"), "\(quiet)")
    }

    @Test func volumesWorkBothWays() throws {
        let r = try container()
        let host = makeTempDirectory("vol")
        defer { try? FileIO.removeTree(host) }
        try writeFile(host + "/from-host", "hello from host\n")
        let run = r.run(["run", "--nobanner", "-v", host + ":/data", "--volume=\(host):/other", "c", "/bin/sh", "-c",
                         "cat /data/from-host; echo written > /data/from-container; ls /other"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "hello from host\nfrom-container\nfrom-host\n", "\(run.stdout)")
        #expect(String(decoding: try FileIO.readFile(host + "/from-container"), as: UTF8.self) == "written\n")
        // A host path that does not exist is refused before anything starts.
        let bad = r.run(["run", "--nobanner", "-v", host + "/missing:/m", "c", "/bin/sh"])
        #expect(bad.status == 2 && bad.stderr.contains("invalid host volume path"), "\(bad.stderr)")
        let rel = r.run(["run", "--nobanner", "-v", "relative:/m", "c", "/bin/sh"])
        #expect(rel.status == 2 && rel.stderr.contains("absolute"), "\(rel.stderr)")
    }

    @Test func workdirEnvAndEnvFile() throws {
        let r = try container()
        let tmp = makeTempDirectory("envfile")
        defer { try? FileIO.removeTree(tmp) }
        try writeFile(tmp + "/env", "# comment\nFROM_FILE=file\nBOTH=file\n\n")
        let run = r.run(["run", "--nobanner", "-w", "/bin", "--env-file=\(tmp)/env", "-e", "BOTH=option", "--env=PLAIN=p",
                         "-e", "FROM_HOST", "c", "/bin/sh", "-c", "pwd; echo $FROM_FILE $BOTH $PLAIN $FROM_HOST"],
                     ["FROM_HOST": "hostvalue"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "/bin\nfile option p hostvalue\n", "\(run.stdout)")
        let bad = r.run(["run", "--nobanner", "-w", "/no/such/dir", "c", "/bin/sh"])
        #expect(bad.status == 2 && bad.stderr.contains("invalid working directory"), "\(bad.stderr)")
        // The host environment stays out unless --hostenv.
        let hidden = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "echo [$SECRET_HOST_VAR]"], ["SECRET_HOST_VAR": "s"])
        #expect(hidden.stdout == "[]\n")
        let passed = r.run(["run", "--nobanner", "--hostenv", "c", "/bin/sh", "-c", "echo [$SECRET_HOST_VAR]"], ["SECRET_HOST_VAR": "s"])
        #expect(passed.stdout == "[s]\n")
    }

    @Test func usersAndTheirPasswdEntries() throws {
        let r = try container()
        let root = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "id -u; id -un; echo $HOME $USER"])
        #expect(root.stdout == "0\nroot\n/root root\n", "\(root)")
        let numeric = r.run(["run", "--nobanner", "--user=1234:4321", "c", "/bin/sh", "-c", "id -u; id -g; grep ^udoc1234: /etc/passwd"])
        #expect(numeric.status == 0, "\(numeric.stderr)")
        #expect(numeric.stdout == "1234\n4321\nudoc1234:x:1234:4321:*UDOCKER*:/:/bin/sh\n", "\(numeric.stdout)")
        let bad = r.run(["run", "--nobanner", "--user=bad:user:x", "c", "/bin/sh"])
        #expect(bad.status == 2 && bad.stderr.contains("invalid user"), "\(bad.stderr)")
        // The container's own files are not changed for the entry: it is a separate file bound over.
        let rootPath = r.run(["inspect", "-p", "c"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!FileIO.exists(rootPath + "/etc/passwd"))
    }

    @Test func entrypointAndMissingCommand() throws {
        let r = try container()
        let ep = r.run(["run", "--nobanner", "--entrypoint=/bin/busybox", "c", "echo", "a", "b"])
        #expect(ep.status == 0 && ep.stdout == "a b\n", "\(ep)")
        let multi = r.run(["run", "--nobanner", "--entrypoint=/bin/busybox echo first", "c", "second"])
        #expect(multi.stdout == "first second\n", "\(multi)")
        let none = r.run(["run", "--nobanner", "--entrypoint=", "c", "/bin/busybox", "echo", "plain"])
        #expect(none.stdout == "plain\n", "\(none)")
        let missing = r.run(["run", "--nobanner", "c", "/no/such/program"])
        #expect(missing.status == 2 && missing.stderr.contains("command not found"), "\(missing.stderr)")
        // The image's Cmd is /bin/sh: with no command it runs, reading stdin.
        let cmd = runUdocker(["run", "--nobanner", "c"], env: r.env, stdin: Array("echo from-stdin; exit 4\n".utf8))
        #expect(cmd.status == 4 && cmd.stdout == "from-stdin\n", "\(cmd)")
    }

    @Test func runImageCreatesPullsAndRemoves() throws {
        let r = try ImageRepo()
        // Not pulled yet and --pull=never: a clear error, nothing made.
        let never = r.run(["run", "--pull=never", "test/busybox:oci", "/bin/sh"])
        #expect(never.status == 1 && never.stderr.contains("test/busybox:oci"), "\(never.stderr)")
        #expect(((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).isEmpty)
        // Pulled on demand, run once, removed with --rm.
        let rm = r.run(["run", "--rm", "--nobanner", "test/busybox:oci", "/bin/sh", "-c", "echo ran; exit 3"])
        #expect(rm.status == 3 && rm.stdout.hasSuffix("ran\n"), "\(rm)")
        #expect(((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).isEmpty)
        // --name with --pull=reuse makes the container once and then reuses it.
        let first = r.run(["run", "--nobanner", "--name=keep", "--pull=reuse", "test/busybox:oci", "/bin/sh", "-c", "echo 1 > /mark"])
        #expect(first.status == 0, "\(first.stderr)")
        let second = r.run(["run", "--nobanner", "--name=keep", "--pull=reuse", "test/busybox:oci", "/bin/busybox", "cat", "/mark"])
        #expect(second.status == 0 && second.stdout == "1\n", "\(second)")
        let dirs = ((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).filter { $0 != "keep" }
        #expect(dirs.count == 1, "\(dirs)")
    }

    /// --rm removes the container also when the run fails before the program starts, as udocker does.
    @Test func rmRemovesTheContainerWhenTheProgramCannotStart() throws {
        let r = try ImageRepo()
        #expect(r.run(["pull", "test/busybox:oci"]).status == 0)
        let empty = { ((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).isEmpty }
        let badVolume = r.run(["run", "--rm", "--nobanner", "-v", "/no/such/host/dir:/m", "test/busybox:oci", "/bin/sh", "-c", "true"])
        #expect(badVolume.status == 2 && badVolume.stderr.contains("invalid host volume path"), "\(badVolume)")
        #expect(r.run(["ps"]).stdout.split(separator: "\n").count == 1, "ps lists a container")
        #expect(empty(), "\((try? FileIO.listDirectory(r.repo + "/containers")) ?? [])")
        let notFound = r.run(["run", "--rm", "--nobanner", "test/busybox:oci", "/no/such/program"])
        #expect(notFound.status == 2 && notFound.stderr.contains("command not found"), "\(notFound)")
        #expect(r.run(["ps"]).stdout.split(separator: "\n").count == 1, "ps lists a container")
        #expect(empty(), "\((try? FileIO.listDirectory(r.repo + "/containers")) ?? [])")
        // A container of the repository goes too (the run would have removed it), unless protected.
        #expect(r.run(["create", "--name=kept", "test/busybox:oci"]).status == 0)
        #expect(r.run(["protect", "kept"]).status == 0)
        #expect(r.run(["run", "--rm", "--nobanner", "kept", "/no/such/program"]).status == 2)
        #expect(r.run(["inspect", "-p", "kept"]).status == 0, "the protected container was removed")
        #expect(r.run(["unprotect", "kept"]).status == 0)
        #expect(r.run(["run", "--rm", "--nobanner", "kept", "/no/such/program"]).status == 2)
        #expect(empty(), "\((try? FileIO.listDirectory(r.repo + "/containers")) ?? [])")
    }

    @Test func locationRunsATreeOutsideTheRepository() throws {
        let r = try container()
        let root = r.run(["inspect", "-p", "c"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let run = r.run(["run", "--nobanner", "--location=\(root)", "/bin/sh", "-c", "echo at-location"])
        #expect(run.status == 0 && run.stdout == "at-location\n", "\(run)")
    }

    @Test func cpusetRestrictsTheProgram() throws {
        let r = try container()
        let run = r.run(["run", "--nobanner", "--cpuset-cpus=0", "c", "/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"])
        #expect(run.status == 0 && run.stdout.hasSuffix("\t0\n"), "\(run)")
        let bad = r.run(["run", "--nobanner", "--cpuset-cpus=x-y", "c", "/bin/sh", "-c", "true"])
        #expect(bad.status == 1 && bad.stderr.contains("--cpuset-cpus"), "\(bad.stderr)")
    }

    @Test func signalsReachTheProgram() throws {
        let r = try container()
        // Without --rm udocker becomes the engine (exec); with --rm it waits and forwards signals.
        for extra in [[], ["--rm"]] {
            let args = ["run", "--nobanner"] + extra + ["c", "/bin/sh", "-c",
                        "trap 'echo got-term; exit 42' TERM; while :; do sleep 0.1; done"]
            let pid = startUdocker(args, env: r.env.merging(["HOME": r.tmp]) { $1 })
            usleep(1_500_000)   // time to start and set the trap
            kill(pid, SIGTERM)
            let status = waitForExit(pid)
            #expect(status == 42, "exit status \(status) with \(extra)")
        }
        #expect(r.run(["inspect", "-p", "c"]).status != 0, "--rm removed the container")
    }

    @Test func concurrentRunsOfOneContainer() async throws {
        let r = try container()
        let env = r.env
        let results = await withTaskGroup(of: (Int, Int32, String).self) { group in
            for i in 0..<12 {
                group.addTask {
                    let run = runUdocker(["run", "--nobanner", "--user=\(1000 + i % 3)", "c", "/bin/sh", "-c", "echo $((\(i) * 2)); id -u"], env: env)
                    return (i, run.status, run.stdout)
                }
            }
            var out: [(Int, Int32, String)] = []
            for await x in group { out.append(x) }
            return out
        }
        for (i, status, stdout) in results {
            #expect(status == 0 && stdout == "\(i * 2)\n\(1000 + i % 3)\n", "run \(i): \(status) \(stdout)")
        }
    }
}
