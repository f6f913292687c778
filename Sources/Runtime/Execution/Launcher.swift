// Starts what an engine prepared: exec in place when nothing has to happen afterwards (least
// overhead; signals and the exit code are the program's own), else spawn, forward signals, wait.
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// A prepared engine command line.
public struct Launch: Sendable {
    public var executable: String
    public var arguments: [String]
    /// The engine's whole environment, "NAME=value".
    public var environment: [String]
    /// Host directory to start in (Fakechroot needs the container's working directory).
    public var hostWorkdir: String?
    /// Lines for the user before the program starts (warnings about options a mode cannot honour).
    public var notes: [String] = []
    /// Work after the program ends (e.g. removing runc's state); forces spawn-and-wait.
    public var cleanup: (@Sendable () -> Void)? = nil
    /// argv[0] for the program when it must differ from `executable` (a host path the program
    /// should not see, as Fakechroot's F3/F4 start patched files directly).
    public var argv0: String? = nil
    /// How many generations below the engine the signals sent to udocker go: 0 the engine itself,
    /// 1 its children (PRoot does not pass signals on to the program it traces), 2 (PRoot under
    /// runc). Above 0 the launcher spawns and waits.
    public var signalDepth: Int32 = 0
    /// A check after the program ends whose lines the user is shown (store files changed by a run of
    /// an unsealed container); forces spawn-and-wait.
    public var afterRun: (@Sendable () -> [String])? = nil

    public init(executable: String, arguments: [String], environment: [String], hostWorkdir: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.hostWorkdir = hostWorkdir
    }
}

public enum Launcher {
    /// Runs `launch` and returns the program's exit code (128+signal when killed). With
    /// `mayExec` and no cleanup the process is replaced and this only returns on failure.
    public static func run(_ launch: Launch, mayExec: Bool, cpuset: String?) throws -> Int32 {
        if let cpus = cpuset {
            let rc = ud_set_cpu_affinity(cpus)
            if rc == EINVAL {
                throw RuntimeError.badRunOption("invalid --cpuset-cpus value '\(cpus)'", "write CPU numbers and ranges, e.g. 0-3,6")
            } else if rc != 0 {
                throw RuntimeError.badRunOption("--cpuset-cpus=\(cpus) cannot be applied (\(String(cString: strerror(rc))))", "use CPUs this job may run on (see taskset -p $$)")
            }
        }
        return try withCStrings([launch.argv0 ?? launch.executable] + launch.arguments) { argv in
            try withCStrings(launch.environment) { envp in
                if mayExec && launch.cleanup == nil && launch.afterRun == nil && launch.signalDepth == 0 {
                    let err = ud_exec(launch.executable, argv, envp, launch.hostWorkdir)
                    throw RuntimeError.executionFailed("starting \(launch.executable)", String(cString: strerror(err)))
                }
                var status: Int32 = 0
                let err = ud_spawn_wait(launch.executable, argv, envp, launch.hostWorkdir,
                                        launch.signalDepth, &status)
                launch.cleanup?()
                if err != 0 {
                    throw RuntimeError.executionFailed("starting \(launch.executable)", String(cString: strerror(err)))
                }
                return status
            }
        }
    }

    /// Runs `argv` to completion with its output (stdout and stderr) collected, reading `stdin`
    /// (for probes such as --version; a file to send, for a copy through ssh). With `searchPath`,
    /// argv[0] is looked up on the environment's PATH. Returns nil when it cannot start.
    public static func capture(_ argv: [String], environment: [String] = ["PATH=/usr/bin:/bin"],
                               stdin: String = "/dev/null", searchPath: Bool = false) -> (status: Int32, output: String)? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var pid: pid_t = 0
        let rc: Int32 = (try? withCStrings(argv) { a in
            try withCStrings(environment) { e in
                searchPath ? posix_spawnp(&pid, argv[0], &actions, nil, a, e) : posix_spawn(&pid, argv[0], &actions, nil, a, e)
            }
        }) ?? EINVAL
        close(fds[1])
        defer { close(fds[0]) }
        guard rc == 0 else { return nil }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { out += buf[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        var ws: Int32 = 0
        while waitpid(pid, &ws, 0) < 0 && errno == EINTR {}
        let status: Int32 = (ws & 0x7f) == 0 ? (ws >> 8) & 0xff : 128 + (ws & 0x7f)
        return (status, String(decoding: out, as: UTF8.self))
    }
}

/// Calls `body` with a NULL-terminated C array of the strings, valid for the call only.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) throws -> R) throws -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return try pointers.withUnsafeBufferPointer { buf in
        guard let base = buf.baseAddress else { throw RuntimeError.internalFailure("empty argument vector") }
        return try body(base)
    }
}
