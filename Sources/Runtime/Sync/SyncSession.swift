// One sync session from the initiator's side (`udocker sync`, `mkrepo --from`) and from the far
// end's (`udocker sync-serve`).
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A sync as the user asked for it.
public struct SyncRequestOptions: Sendable {
    /// Where the other repository is.
    public var location: SyncLocation
    /// True for `sync --from` (this repository receives), false for `sync TARGET`.
    public var fromLocation: Bool
    public var selection: SyncSelection
    public var arrival: SyncArrivalOptions
    public var dryRun: Bool
    public var ssh: SSHOptions
    public var progress: (@Sendable (SyncEvent) -> Void)?

    public init(location: SyncLocation, fromLocation: Bool, selection: SyncSelection = SyncSelection(),
                arrival: SyncArrivalOptions = SyncArrivalOptions(), dryRun: Bool = false, ssh: SSHOptions = SSHOptions(),
                progress: (@Sendable (SyncEvent) -> Void)? = nil) {
        self.location = location; self.fromLocation = fromLocation; self.selection = selection
        self.arrival = arrival; self.dryRun = dryRun; self.ssh = ssh; self.progress = progress
    }
}

/// The exchange, after a hello each way:
///   initiator -> far end: request (who sends, the selection, arrival options, dry run)
///   sender -> receiver:   offer (objects, images, containers)
///   receiver -> sender:   want (the objects it lacks, each with the offset of a partial blob)
///   sender -> receiver:   object + chunks, for each wanted object, without waiting; then refs
///   receiver -> sender:   report
/// Either end may send a failure frame instead of its next frame.
public enum SyncSession {
    /// Runs a sync between `repository` (this end) and the far end the options locate.
    public static func run(_ options: SyncRequestOptions, repository: Repository,
                           maxLayerExpansion: UInt64?) throws -> SyncResult {
        if case .local(let path) = options.location, Paths.absolute(path) == repository.topdir {
            throw RuntimeError.syncBadLocation(path, reason: "it is this repository")
        }
        // A far end that dies must be an error on our side, not a SIGPIPE that kills us silently.
        signal(SIGPIPE, SIG_IGN)
        let far = try FarEndProcess(argv: FarEndProcess.command(for: options.location, ssh: options.ssh))
        let c = far.connection
        defer { far.finish() }
        do { try c.exchangeHello() } catch RuntimeError.syncConnectionLost {
            let ended = far.endedBeforeHello()
            if case .ssh(let s) = options.location, case .syncFarEndEnded(_, _, let said) = ended,
               let clearer = SSHTransport.farEndFailure(s, options: options.ssh, status: far.wait(), stderr: said) {
                throw clearer
            }
            throw ended
        }
        try c.send(.request, json: SyncRequest(farEnd: options.fromLocation ? .send : .receive, selection: options.selection,
                                               arrival: options.arrival, dryRun: options.dryRun,
                                               create: !options.fromLocation && !options.dryRun))
        var result: SyncResult
        if options.fromLocation {
            let receiver = SyncReceiver(connection: c, openRepository: { _ in repository }, arrival: options.arrival,
                                        maxLayerExpansion: maxLayerExpansion, progress: options.progress)
            result = try receiver.run(dryRun: options.dryRun)
        } else {
            let sender = SyncSender(repository: repository, connection: c, progress: options.progress)
            result = try sender.run(selection: options.selection, dryRun: options.dryRun)
        }
        result.report.bytesOnWire = c.bytesOnWire
        return result
    }

    /// The far end: speaks the protocol on `readFD`/`writeFD` for the repository at `topdir`
    /// (created, as mkrepo would, when a receiving request asks for it). Returns the exit status.
    public static func serve(topdir: String, configuration: Configuration, readFD: Int32, writeFD: Int32,
                             environment: [String: String]) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let c = SyncConnection(readFD: readFD, writeFD: writeFD, peer: "the sync initiator")
        let claimed = environment[SyncProtocol.serveVersionVariable].flatMap(Int.init) ?? SyncProtocol.version
        do { try c.exchangeHello(claiming: claimed) } catch {
            // The initiator says what went wrong; a far end that cannot talk has nothing to add.
            return 1
        }
        do {
            let request = try c.expect(.request, as: SyncRequest.self)
            let open: (Bool) throws -> Repository? = { create in
                if Repository.isRepository(at: topdir) { return try Repository.open(configuration) }
                guard create else { return nil }
                return try Repository.create(at: topdir, configuredStoreDir: configuration.storedir).repository
            }
            switch request.farEnd {
            case .receive:
                let receiver = SyncReceiver(connection: c, openRepository: open, arrival: request.arrival,
                                            maxLayerExpansion: try configuration.maxLayerExpansion, progress: nil)
                _ = try receiver.run(dryRun: request.dryRun)
            case .send:
                guard let repo = try open(false) else { throw RuntimeError.notARepository(topdir) }
                _ = try SyncSender(repository: repo, connection: c, progress: nil).run(selection: request.selection, dryRun: request.dryRun)
            }
            return 0
        } catch {
            switch error {
            case RuntimeError.syncConnectionLost, RuntimeError.syncFarEndFailed: break
            default: c.sendFailure(error)
            }
            return 1
        }
    }
}
