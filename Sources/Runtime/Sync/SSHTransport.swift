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
        try location.command(sshCommand: options.sshCommand,
                             remoteArguments: [options.remoteUdocker] + udockerArguments)
    }
}
