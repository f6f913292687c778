// A link swapped into a container directory after ContainerDirectoryCheck passed (the command is
// stopped there by the `container-checked` failpoint, as a racing process would find it) must not
// lead a write, a lock or a read to the host.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container directory races", .timeLimit(.minutes(2)))
struct ContainerDirectoryRaceTests {
    /// Seconds a command may take in all, stopped time included.
    static let bound = 30.0

    /// Starts `udocker args` with the failpoint armed and stderr in a file; when it has stopped after
    /// its `at`-th check (commands that check twice are caught at the last), runs `swap`, lets it go
    /// on and returns its status and stderr. Every stop before or after is simply continued.
    static func runSwapping(_ r: ImportedBusyboxRepo, _ args: [String], at: Int = 1,
                            swap: () throws -> Void) throws -> (status: Int32, stderr: String) {
        let errPath = r.tmp + "/race-stderr"
        let home = r.tmp + "/race-home"
        try FileIO.mkdirs(home)
        let argv = [udockerBinaryPath()] + (geteuid() == 0 ? ["--allow-root"] : []) + args
        let env = r.env.merging(["UDOCKER_FAILPOINT": "container-checked", "HOME": home, "UDOCKER_NOSYSCONF": "1",
                                 "PATH": "/usr/local/bin:/usr/bin:/bin"]) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        try #require(posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv) == 0)
        var ended = false
        defer { if !ended { kill(pid, SIGKILL); kill(pid, SIGCONT); _ = waitForExit(pid) } }

        let start = Date()
        var stops = 0
        while Date().timeIntervalSince(start) < bound {
            var status: Int32 = 0
            let w = waitpid(pid, &status, WUNTRACED | WNOHANG)
            if w == pid && (status & 0xff) == 0x7f {
                stops += 1
                if stops == at { try swap() }
                kill(pid, SIGCONT)
                continue
            }
            if w == pid {
                ended = true
                #expect(stops >= at, "\(args) stopped \(stops) times, fewer than \(at): the link was never swapped in")
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return (code, String(decoding: (try? FileIO.readFile(errPath)) ?? [], as: UTF8.self))
            }
            usleep(5_000)
        }
        Issue.record("\(args) ran past \(bound) s")
        return (137, "")
    }

    static func hostDirectory(_ r: ImportedBusyboxRepo) throws -> String {
        let dir = r.tmp + "/host"
        try FileIO.mkdirs(dir)
        try writeFile(dir + "/marker", "the host's own file\n")
        return dir
    }

    @Test("run --user=N writes no passwd or group file through a runtime/ link made after the check")
    func runtimeSwappedAfterTheCheck() throws {
        let r = try ImportedBusyboxRepo(label: "race-runtime")
        let id = try r.create("c")
        let host = try Self.hostDirectory(r)
        let before = try TreeSnapshot(host)
        let runtime = r.containerDir(id) + "/runtime"
        _ = try? runCommand("/bin/rm", ["-rf", runtime])
        let res = try Self.runSwapping(r, ["run", "--nobanner", "--user=1234", "c", "/bin/true"]) {
            try #require(symlink(host, runtime) == 0)
        }
        #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "nothing was written to the host directory")
        #expect(res.status != 0, "the run went on through the link")
        #expect(res.stderr.contains("Error:") && res.stderr.contains("runtime") && res.stderr.contains("symbolic link"), "\(res.stderr)")
    }

    @Test("an R1 run makes no run directory through a runtime/ link made after the check")
    func runcRuntimeSwappedAfterTheCheck() throws {
        let r = try ImportedBusyboxRepo(label: "race-runc")
        let id = try r.create("c")
        try r.setMode(id, "R1")
        let host = try Self.hostDirectory(r)
        let before = try TreeSnapshot(host)
        let runtime = r.containerDir(id) + "/runtime"
        _ = try? runCommand("/bin/rm", ["-rf", runtime])
        // --containerauth: no passwd or group file is written, so the run directory meets the link first.
        let res = try Self.runSwapping(r, ["run", "--nobanner", "--containerauth", "c", "/bin/true"]) {
            try #require(symlink(host, runtime) == 0)
        }
        #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "nothing was made in the host directory")
        #expect(res.status != 0, "the run went on through the link")
        #expect(res.stderr.contains("Error:") && res.stderr.contains("runtime") && res.stderr.contains("symbolic link"), "\(res.stderr)")
    }

    @Test("setup takes no lock through a .setup.lock link made after the check")
    func setupLockSwappedAfterTheCheck() throws {
        let r = try ImportedBusyboxRepo(label: "race-setup")
        let id = try r.create("c")
        let host = try Self.hostDirectory(r)
        let before = try TreeSnapshot(host)
        let lock = r.containerDir(id) + "/.setup.lock"
        _ = unlink(lock)
        let res = try Self.runSwapping(r, ["setup", "--execmode=P2", "c"], at: 2) {
            try #require(symlink(host + "/made-by-setup", lock) == 0)
        }
        #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "no file was made in the host directory")
        #expect(res.status != 0, "setup went on through the link")
        #expect(res.stderr.contains("Error:") && res.stderr.contains(".setup.lock") && res.stderr.contains("symbolic link"), "\(res.stderr)")
        #expect(r.text(r.containerDir(id) + "/execmode")?.hasPrefix("P1") == true, "the mode was not changed")
    }

    @Test("clone copies no host file through a container.json link made after the check")
    func cloneSourceSwappedAfterTheCheck() throws {
        let r = try ImportedBusyboxRepo(label: "race-clone")
        let id = try r.create("c")
        let host = try Self.hostDirectory(r)
        try writeFile(host + "/secret", "the host's secret\n")
        let config = r.containerDir(id) + "/container.json"
        let res = try Self.runSwapping(r, ["clone", "--name=copy", "c"]) {
            try #require(unlink(config) == 0 && symlink(host + "/secret", config) == 0)
        }
        #expect(res.status != 0, "clone went on through the link")
        #expect(res.stderr.contains("Error:") && res.stderr.contains("symbolic link"), "\(res.stderr)")
        #expect(!FileIO.exists(r.repo + "/containers/copy"), "no clone was made")
        let leaked = ((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).contains { e in
            e != id && e != "c" && r.text(r.repo + "/containers/" + e + "/container.json")?.contains("secret") == true
        }
        #expect(!leaked, "no container holds the host's file")
    }
}
