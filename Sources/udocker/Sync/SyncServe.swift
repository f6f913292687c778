// udocker --repo=PATH sync-serve: the far end of a sync, speaking the sync protocol on stdin and
// stdout (started by `udocker sync` here or through ssh). Hidden: not in the main help.
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Runtime

struct SyncServe: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "sync-serve")

    static let helpText = """
        sync-serve: the far end of 'udocker sync', speaking its protocol on standard input and output
        udocker --repo=<directory> sync-serve
        started by 'udocker sync'; not for use by hand
        """
    static var helpGroup: HelpGroup { .transfer }
    static var isHidden: Bool { true }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        // Stdout is the connection: anything printed (Info lines) must go to stderr instead.
        let out = dup(1)
        guard out >= 0 else { throw UsageError(description: "sync-serve: cannot use standard output") }
        _ = fcntl(out, F_SETFD, FD_CLOEXEC)
        _ = dup2(2, 1)
        return SyncSession.serve(topdir: context.configuration.topdir, configuration: context.configuration,
                                 readFD: 0, writeFD: out, environment: context.environment)
    }
}
