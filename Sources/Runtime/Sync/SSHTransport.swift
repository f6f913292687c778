// How a sync reaches a repository on another host: the ssh command line that starts this binary's
// sync server there, and what to tell the user when the far end cannot be started.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The ssh settings of a sync: `--ssh`/UDOCKER_SSH, `--remote-udocker`, `--install-remote`.
public struct SSHOptions: Sendable, Equatable {
    /// The command that replaces `ssh`, split into words as a shell would.
    public var sshCommand: String
    /// The udocker binary on the far host (a name looked up on its PATH, or a path).
    public var remoteUdocker: String
    /// Copy this binary to the far host's ~/.cache/udocker/bin/ first.
    public var installRemote: Bool

    public init(sshCommand: String? = nil, remoteUdocker: String? = nil, installRemote: Bool = false,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.sshCommand = sshCommand ?? environment["UDOCKER_SSH"].flatMap { $0.isEmpty ? nil : $0 } ?? "ssh"
        self.remoteUdocker = remoteUdocker ?? "udocker"
        self.installRemote = installRemote
    }
}

public enum SSHTransport {
    /// The command line that starts `udocker <udockerArguments>` on the far host, its output and input
    /// being the session's connection.
    public static func farEndCommand(_ location: SSHLocation, options: SSHOptions,
                                     udockerArguments: [String]) throws -> [String] {
        var remote = options.remoteUdocker
        if options.installRemote {
            try install(location, options: options)
            remote = installedPath
        }
        return try location.command(sshCommand: options.sshCommand, remoteArguments: [remote] + udockerArguments)
    }

    /// Where --install-remote puts this binary on the far host.
    public static let installedPath = "~/.cache/udocker/bin/udocker"

    /// The clearer error for a far end that ended before its hello, or nil: ssh's own failure (255),
    /// or no udocker where the far end looked for it (127, "not found").
    public static func farEndFailure(_ location: SSHLocation, options: SSHOptions, status: Int32, stderr: String) -> RuntimeError? {
        let said = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if status == 255 { return .syncSSHFailed(location: location.description, stderr: said) }
        if status == 127 || said.contains("not found") || said.contains("No such file or directory") {
            return .syncRemoteUdockerMissing(location: location.description,
                                             remote: options.installRemote ? installedPath : options.remoteUdocker, stderr: said)
        }
        return nil
    }

    /// Copies this binary to the far host's ~/.cache/udocker/bin/udocker through the same ssh command,
    /// unless the one there has the same sha256. Written to a temp name and renamed, so a sync already
    /// running the old one there is not disturbed.
    static func install(_ location: SSHLocation, options: SSHOptions) throws {
        let me = FarEndProcess.selfExecutable()
        let dir = "\"$HOME/.cache/udocker/bin\""
        let local = Launcher.capture(["/usr/bin/sha256sum", me])?.output.split(separator: " ").first.map(String.init)
        let check = try location.command(sshCommand: options.sshCommand,
                                         remoteArguments: ["sh", "-c", "sha256sum \(dir)/udocker 2>/dev/null || true"])
        if let local, let there = run(check, stdinFile: "/dev/null"), there.status == 0,
           there.output.split(separator: " ").first.map(String.init) == local { return }
        let script = "mkdir -p \(dir) && t=\(dir)/.udocker.$$ && cat > \"$t\" && chmod 755 \"$t\" && mv -f \"$t\" \(dir)/udocker"
        let copy = try location.command(sshCommand: options.sshCommand, remoteArguments: ["sh", "-c", script])
        guard let done = run(copy, stdinFile: me) else {
            throw RuntimeError.syncInstallRemoteFailed(location: location.description, reason: "\(copy[0]) cannot be started")
        }
        if done.status == 255 { throw RuntimeError.syncSSHFailed(location: location.description, stderr: done.output.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard done.status == 0 else {
            throw RuntimeError.syncInstallRemoteFailed(location: location.description,
                                                       reason: "the copy exited with status \(done.status): \(done.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Runs `argv` (looked up on PATH) with `stdinFile` as its input; its stdout and stderr collected.
    private static func run(_ argv: [String], stdinFile: String) -> (status: Int32, output: String)? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinFile, O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var pid: pid_t = 0
        let env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let rc: Int32 = (try? withCStrings(argv) { a in
            try withCStrings(env) { e in posix_spawnp(&pid, argv[0], &actions, nil, a, e) }
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
        return ((ws & 0x7f) == 0 ? (ws >> 8) & 0xff : 128 + (ws & 0x7f), String(decoding: out.suffix(4096), as: UTF8.self))
    }
}
