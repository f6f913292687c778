// `sync` with docker://HOST[:PORT]/NAMESPACE as target or source: RegistrySync run and printed the way
// the other syncs print (bars on a terminal, a line per image or container otherwise, one last line).
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Registry
import Runtime

enum SyncRegistryOutput {
    static func run(host: String, namespace: String, selection: SyncSelection, from: Bool, arrival: SyncArrivalOptions,
                    dryRun: Bool, quiet: Bool, reportFile: String?, repository: Repository,
                    context: CommandContext) throws -> Int32 {
        let output = context.output
        let silent = quiet || output.level < Output.info
        let bars = !silent && !dryRun && isatty(2) == 1
        let display = TransferProgress(style: bars ? .bars : .none)
        let push = PushProgress(display: display), pull = PullProgress(display: display)
        var debug: (@Sendable (String) -> Void)? = nil
        if output.level >= Output.debug { debug = { line in output.debug(line) } }
        var access = RegistrySyncAccess(keystore: Keystore(configuration: context.configuration), dryRun: dryRun, debug: debug)
        if bars {
            access.pushProgress = { event in push.handle(event) }
            access.pullProgress = { event in pull.handle(event) }
        } else if !silent && !dryRun {
            access.item = { item in Output.write(2, line(item)) }
        }
        let result: RegistrySyncResult
        if from {
            result = try RegistrySync.pull(repository: repository, host: host, namespace: namespace, names: selection.names,
                                           images: selection.images, containers: selection.containers, options: arrival, configuration: context.configuration,
                                           environment: context.environment, access: access)
        } else {
            result = try RegistrySync.push(repository: repository, selection: selection, host: host, namespace: namespace,
                                           configuration: context.configuration, environment: context.environment,
                                           access: access)
        }
        if let reportFile { try writeReport(result, to: reportFile) }
        let r = result.report
        let place = SyncLocation.registry(host: host, namespace: namespace).description
        if dryRun {
            for i in result.items {
                output.out("would sync \(i.kind.rawValue) \(i.name) as \(i.remote): \(i.objectsSent) object(s) to send "
                    + "(\(formatBytes(UInt64(max(0, i.bytes))))), \(i.objectsPresent) there already")
            }
            output.out("dry run: \(r.objectsSent) object(s) of \(formatBytes(UInt64(max(0, r.objectBytes)))) would travel "
                + "\(from ? "from" : "to") \(place), which has \(r.objectsPresent) already; nothing was changed")
            return 0
        }
        guard !silent else { return 0 }
        output.info("synced \(r.images) image(s) and \(r.containers) container(s) \(from ? "from" : "to") \(place): "
            + "\(r.objectsSent) object(s) sent (\(formatBytes(UInt64(max(0, r.objectBytes))))), "
            + "\(formatBytes(UInt64(max(0, r.bytesOnWire)))) on the wire, \(r.objectsPresent) object(s) the target already had")
        return 0
    }

    /// The line of one image or container when stderr is not a terminal.
    static func line(_ item: RegistrySyncItem) -> String {
        (item.kind == .container ? "container " : "") + "\(item.name): \(item.objectsSent) object(s) sent, "
            + "\(item.objectsPresent) already there (\(item.remote))\n"
    }

    static func writeReport(_ result: RegistrySyncResult, to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do {
            try FileIO.writeAtomically(path, Array(try e.encode(result)) + [10])
        } catch {
            throw UsageError(description: "cannot write the sync report to \(path): \(error)")
        }
    }
}
