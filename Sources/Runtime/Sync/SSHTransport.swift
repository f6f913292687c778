// How a sync reaches a repository on another host: the ssh command line that starts this binary's
// sync server there, and what to tell the user when the far end cannot be started.
import Foundation

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
            if let release = Release.directory {
                remote = try installRelease(release, location, options: options)
            } else {
                try install(location, options: options)
                remote = installedPath
            }
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
        let me = Release.selfCommand
        let dir = "\"$HOME/.cache/udocker/bin\""
        let local = Launcher.capture(["/usr/bin/sha256sum", me])?.output.split(separator: " ").first.map(String.init)
        let check = try location.command(sshCommand: options.sshCommand,
                                         remoteArguments: ["sh", "-c", "sha256sum \(dir)/udocker 2>/dev/null || true"])
        if let local, let there = run(check, stdinFile: "/dev/null"), there.status == 0,
           there.output.split(separator: " ").first.map(String.init) == local { return }
        try copy(me, location, options: options,
                 script: "mkdir -p \(dir) && t=\(dir)/.udocker.$$ && cat > \"$t\" && chmod 755 \"$t\" && mv -f \"$t\" \(dir)/udocker")
    }

    /// Runs `script` on the far host with the file `input` as its standard input: ssh's own failure
    /// and any other non-zero status are errors.
    private static func copy(_ input: String, _ location: SSHLocation, options: SSHOptions, script: String) throws {
        let argv = try location.command(sshCommand: options.sshCommand, remoteArguments: ["sh", "-c", script])
        guard let done = run(argv, stdinFile: input) else {
            throw RuntimeError.syncInstallRemoteFailed(location: location.description, reason: "\(argv[0]) cannot be started")
        }
        let said = done.output.trimmingCharacters(in: .whitespacesAndNewlines)
        if done.status == 255 { throw RuntimeError.syncSSHFailed(location: location.description, stderr: said) }
        guard done.status == 0 else {
            throw RuntimeError.syncInstallRemoteFailed(location: location.description, reason: "the copy exited with status \(done.status): \(said)")
        }
    }

    /// From a release, the whole release goes (the binary needs its loader and libraries): to the far
    /// host's ~/.cache/udocker/release-<digest of the binary>/, unpacked aside and renamed into place,
    /// skipped when it is there already. Returns the far udocker to start: that release's launcher.
    static func installRelease(_ release: String, _ location: SSHLocation, options: SSHOptions) throws -> String {
        let fail = { (why: String) in RuntimeError.syncInstallRemoteFailed(location: location.description, reason: why) }
        guard let sum = Launcher.capture(["/usr/bin/sha256sum", release + "/libexec/udocker"])?.output.prefix(16), sum.count == 16 else {
            throw fail("cannot read \(release)/libexec/udocker")
        }
        let dir = "\"$HOME/.cache/udocker/release-\(sum)\""
        let remote = "~/.cache/udocker/release-\(sum)/udocker"
        let check = try location.command(sshCommand: options.sshCommand, remoteArguments: ["sh", "-c", "test -x \(dir)/udocker && echo present || true"])
        if let there = run(check, stdinFile: "/dev/null"), there.status == 0, there.output.contains("present") { return remote }
        let tmp = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let tarball = tmp + "/udocker-release-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tar.gz"
        defer { _ = unlink(tarball) }
        guard let packed = Launcher.capture(["/bin/tar", "-C", release, "-czf", tarball, "."]), packed.status == 0 else {
            throw fail("cannot pack \(release) into \(tarball): \(Launcher.capture(["/bin/tar", "--version"]) == nil ? "no /bin/tar" : "tar failed"); set TMPDIR to a directory with room")
        }
        try copy(tarball, location, options: options,
                 script: "mkdir -p \"$HOME/.cache/udocker\" && t=\(dir).new.$$ && rm -rf \"$t\" && mkdir \"$t\" && tar -xzf - -C \"$t\" && rm -rf \(dir) && mv \"$t\" \(dir)")
        return remote
    }

    /// Runs `argv` (looked up on PATH) with `stdinFile` as its input; the last 4 KB of what it printed.
    private static func run(_ argv: [String], stdinFile: String) -> (status: Int32, output: String)? {
        let env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        return Launcher.capture(argv, environment: env, stdin: stdinFile, searchPath: true).map { ($0.status, String($0.output.suffix(4096))) }
    }
}
