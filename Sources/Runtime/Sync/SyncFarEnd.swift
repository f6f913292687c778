// The far end of a sync: its command (this binary for a directory, ssh for another host), spawned
// on pipes, its stderr passed on to ours with the last lines kept for when it ends before its hello.
import CAS
import CShim
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A started far end: the connection on its stdin/stdout, its stderr relay, its exit status.
final class FarEndProcess {
    let argv: [String]
    let pid: pid_t
    let connection: SyncConnection
    private let stderrTail = StderrTail()
    private let relay: Thread
    private var status: Int32?

    /// The far end's command line for a location: `udocker --repo=PATH sync-serve` here (this very
    /// binary), or its ssh equivalent.
    static func command(for location: SyncLocation, ssh: SSHOptions) throws -> [String] {
        switch location {
        case .local(let path):
            return [Release.selfCommand] + (geteuid() == 0 ? ["--allow-root"] : []) + ["--repo=" + path, "sync-serve"]
        case .ssh(let s):
            return try SSHTransport.farEndCommand(s, options: ssh, udockerArguments: ["--repo=" + s.path, "sync-serve"])
        case .registry:
            throw RuntimeError.syncNotAvailable(location.description,
                                                "syncing with a registry is not available in this build; use 'udocker push' and 'udocker pull'")
        }
    }

    /// Starts `argv` (looked up on PATH when it has no '/') with pipes on its stdin, stdout and stderr.
    init(argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard let program = argv.first else { throw RuntimeError.internalFailure("empty far end command") }
        self.argv = argv
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1], errChild: [Int32] = [-1, -1]
        guard ud_pipe_cloexec(&toChild) == 0, ud_pipe_cloexec(&fromChild) == 0, ud_pipe_cloexec(&errChild) == 0 else {
            let e = errno
            for fd in toChild + fromChild + errChild where fd >= 0 { close(fd) }
            throw RuntimeError.io("pipe", "the far end's connection", e)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errChild[1], 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // The far end gets default signal handling whatever ours is (SIGPIPE ignored here).
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let env = environment.map { "\($0.key)=\($0.value)" }
        let rc: Int32 = (try? withCStrings(argv) { a in
            try withCStrings(env) { e in posix_spawnp(&child, program, &actions, &attr, a, e) }
        }) ?? EINVAL
        close(toChild[0]); close(fromChild[1]); close(errChild[1])
        guard rc == 0 else {
            close(toChild[1]); close(fromChild[0]); close(errChild[0])
            throw RuntimeError.syncFarEndEnded(command: argv.joined(separator: " "),
                                               status: "it cannot be started (\(String(cString: strerror(rc))))", stderr: "")
        }
        pid = child
        connection = SyncConnection(readFD: fromChild[0], writeFD: toChild[1], peer: "the far end")
        let tail = stderrTail, errFD = errChild[0]
        relay = Thread { tail.relay(errFD) }
        relay.stackSize = 256 << 10
        relay.start()
        connection.describeEnd = { [weak self] in self.map { "; " + $0.endDescription() } ?? "" }
    }

    deinit { finish() }

    /// Ends the session on our side and waits for the far end: both pipes are closed first, so a
    /// far end still writing (we stopped reading after an error) gets EPIPE and ends.
    @discardableResult
    func finish() -> Int32 {
        connection.closeRead()
        connection.closeWrite()
        return wait()
    }

    /// Waits for the far end to exit (after the session, or when its stream ended).
    @discardableResult
    func wait() -> Int32 {
        if let status { return status }
        var ws: Int32 = 0
        while waitpid(pid, &ws, 0) < 0 && errno == EINTR {}
        stderrTail.waitClosed()
        let s: Int32 = (ws & 0x7f) == 0 ? (ws >> 8) & 0xff : 128 + (ws & 0x7f)
        status = s
        return s
    }

    /// "it exited with status N" / "it was killed by signal N", and its last stderr lines.
    func endDescription() -> String {
        let s = wait()
        let how = s > 128 ? "it was killed by signal \(s - 128)" : "it exited with status \(s)"
        let said = stderrTail.lastLines()
        return said.isEmpty ? how : how + "; it said: " + said
    }

    /// The error for a far end that ended before its hello.
    func endedBeforeHello() -> RuntimeError {
        let s = wait()
        return .syncFarEndEnded(command: argv.joined(separator: " "),
                                status: s > 128 ? "it was killed by signal \(s - 128)" : "it exited with status \(s)",
                                stderr: stderrTail.lastLines())
    }
}

/// The far end's stderr: passed on to ours as it comes, the last few KB kept.
final class StderrTail: Sendable {
    private let kept = Mutex<[UInt8]>([])
    private let closed = DispatchSemaphore(value: 0)
    static let keep = 4096

    func relay(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            buf.withUnsafeBytes { b in
                var p = 0
                while p < n, let base = b.baseAddress {
                    let w = write(2, base + p, n - p)
                    if w <= 0 { if errno == EINTR { continue }; break }
                    p += w
                }
            }
            kept.withLock { k in
                k += buf[0..<n]
                if k.count > Self.keep { k.removeFirst(k.count - Self.keep) }
            }
        }
        close(fd)
        closed.signal()
    }

    func waitClosed() {
        closed.wait()
        closed.signal()
    }

    /// The last lines written, joined with " / ", at most five of them.
    func lastLines() -> String {
        let text = kept.withLock { String(decoding: $0, as: UTF8.self) }
        return text.split(separator: "\n").suffix(5).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " / ")
    }
}
