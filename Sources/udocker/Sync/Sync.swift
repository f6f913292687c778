// udocker sync [options] [NAME...] TARGET, udocker sync --from=SOURCE [options] [NAME...]: images
// (and containers) between this repository and another one, here or over ssh.
import ArgumentParser
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Runtime

struct Sync: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "sync")

    static let helpText = """
        sync: send images and containers to another repository, sending only what it lacks
        sync [options] [<repo/image:tag>|<container>...] <target>
        sync --from=<source> [options] [<repo/image:tag>|<container>...]
        <target>, <source>: a repository directory, or ssh://[user@]host[:port]/path
        (created as mkrepo would when it does not exist); no names: everything
        or docker://host[:port]/namespace: a registry namespace (images as they are,
        containers as images: namespace/container-<name>:latest)
        --from=<source>            :bring images and containers here from <source>
        --images                   :images only
        --containers               :containers only
        --dry-run                  :say what would travel (objects, bytes); change nothing
        -q                         :print nothing but errors
        --force                    :replace a container that holds an arriving name
        --materialize=link|auto|copy :how arriving containers are materialised
        --execmode=<mode>          :set arriving containers up in this mode
        --ssh=<command>            :use this instead of ssh (or UDOCKER_SSH)
        --remote-udocker=<path>    :udocker on the far host (default: udocker)
        --install-remote           :copy this udocker to the far host first
        --report=<file>            :write what happened as JSON to <file>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "sync [<image>...] <dir|ssh://host/dir>", text: "Send images and containers to a repository"),
         HelpLine(usage: "sync --from=<dir|ssh://host/dir>", text: "Bring images and containers from a repository")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker sync /data/otherrepo", "udocker sync busybox:latest ssh://node1/~/.udocker",
         "udocker sync --from=ssh://login.cluster/~/.udocker --dry-run",
         "udocker sync busybox:latest docker://registry.example.org/team/udocker"]
    }

    @Option(name: .customLong("from")) var from: String?
    @Flag(name: .customLong("images")) var imagesOnly = false
    @Flag(name: .customLong("containers")) var containersOnly = false
    @Flag(name: .customLong("dry-run")) var dryRun = false
    @Flag(name: .customShort("q")) var quiet = false
    @Flag(name: .customLong("force")) var force = false
    @Option(name: .customLong("materialize")) var materialize: String?
    @Option(name: .customLong("execmode")) var execmode: String?
    @Option(name: .customLong("ssh")) var ssh: String?
    @Option(name: .customLong("remote-udocker")) var remoteUdocker: String?
    @Flag(name: .customLong("install-remote")) var installRemote = false
    @Option(name: .customLong("report")) var report: String?
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        var names = arguments
        let place: String
        if let from { place = from } else {
            guard let last = names.popLast() else {
                throw UsageError(description: "sync needs a target: udocker sync [<name>...] <directory|ssh://host/path>, or --from=<source>")
            }
            place = last
        }
        let location = try SyncLocation.parse(place)
        if let m = materialize, !["link", "auto", "copy"].contains(m) {
            throw UsageError(description: "--materialize takes link, auto or copy, not '\(m)'")
        }
        let selection = SyncSelection(names: names, images: !containersOnly || imagesOnly, containers: !imagesOnly || containersOnly)
        let options = SyncRequestOptions(
            location: location, fromLocation: from != nil, selection: selection,
            arrival: SyncArrivalOptions(force: force, materialize: materialize, execmode: execmode), dryRun: dryRun,
            ssh: SSHOptions(sshCommand: ssh, remoteUdocker: remoteUdocker, installRemote: installRemote,
                            environment: context.environment))
        if case .registry(let host, let namespace) = location {
            return try SyncRegistryOutput.run(host: host, namespace: namespace, selection: selection, from: from != nil,
                                              arrival: options.arrival, dryRun: dryRun, quiet: quiet, reportFile: report,
                                              repository: try context.repository(), context: context)
        }
        let repo = try context.repository()
        return try SyncOutput.run(options, repository: repo, context: context, quiet: quiet, reportFile: report)
    }
}

/// Runs a sync and prints it as pull prints a pull: bars on a terminal, a line per image
/// otherwise, nothing with -q, then one line saying what happened.
enum SyncOutput {
    static func run(_ request: SyncRequestOptions, repository: Repository, context: CommandContext, quiet: Bool,
                    reportFile: String?) throws -> Int32 {
        var options = request
        let silent = quiet || context.output.level < Output.info
        let bars = !silent && !options.dryRun && isatty(2) == 1
        if bars { options.progress = progressBars(state: request.fromLocation ? "receiving" : "sending") }
        let result = try SyncSession.run(options, repository: repository, maxLayerExpansion: try context.configuration.maxLayerExpansion)
        if let reportFile { try writeReport(result, to: reportFile) }
        let r = result.report
        let place = request.location.description
        if result.dryRun {
            for o in result.wouldSend { context.output.out("would send \(o.digest) (\(formatBytes(UInt64(o.size))), \(o.mediaType))") }
            for i in result.images { context.output.out("would sync image \(i.name): \(i.objectsSent) object(s) to send, \(i.objectsPresent) there already") }
            context.output.out("dry run: \(r.objectsSent) object(s) of \(formatBytes(UInt64(r.objectBytes))) would travel \(request.fromLocation ? "from" : "to") \(place), which has \(r.objectsPresent) already; nothing was changed")
            return 0
        }
        guard !silent else { return 0 }
        if !bars { itemLines(result, sent: "sent", present: "already there") }
        context.output.info("synced \(r.images) image(s) and \(r.containers) container(s) \(request.fromLocation ? "from" : "to") \(place): "
            + "\(r.objectsSent) object(s) sent (\(formatBytes(UInt64(r.objectBytes)))), \(formatBytes(UInt64(r.bytesOnWire))) on the wire, "
            + "\(r.objectsPresent) object(s) the target already had")
        return 0
    }

    /// Bars for the objects of a sync or bundle, as pull shows its layers.
    static func progressBars(state: String) -> @Sendable (SyncEvent) -> Void {
        let display = TransferProgress(style: .bars)
        return { event in
            switch event {
            case .plan(let objects, _): display.plan(objects.map { ($0.digest.description, $0.bytes) })
            case .progress(let i, let bytes): display.progress(i, bytes: UInt64(max(0, bytes)), state: state)
            case .done(let i): display.done(i, size: 0, state: "done", complete: true, line: "")
            }
        }
    }

    /// The end of export --repo and import --repo: the JSON report, then (unless silent) a line per
    /// image and container when there were no bars, and the `summary` line.
    static func conclude(_ result: SyncResult, reportFile: String?, silent: Bool, bars: Bool, sent: String, present: String,
                         context: CommandContext, summary: (SyncReport) -> String) throws {
        if let reportFile { try writeReport(result, to: reportFile) }
        guard !silent else { return }
        if !bars { itemLines(result, sent: sent, present: present) }
        context.output.info(summary(result.report))
    }

    /// A line per image and container, for output that is not a terminal.
    static func itemLines(_ result: SyncResult, sent: String, present: String) {
        for i in result.images { Output.write(2, "\(i.name): \(i.objectsSent) object(s) \(sent), \(i.objectsPresent) \(present)\n") }
        for c in result.containers { Output.write(2, "container \(c.name): \(c.objectsSent) object(s) \(sent), \(c.objectsPresent) \(present)\n") }
    }

    static func writeReport(_ result: SyncResult, to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            let data = try e.encode(result)
            try FileIO.writeAtomically(path, Array(data) + [10])
        } catch {
            throw UsageError(description: "cannot write the sync report to \(path): \(error)")
        }
    }
}
