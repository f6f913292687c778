// udocker store gc [--dry-run] (and its alias udocker gc): drop registrations of repositories that are
// gone, then remove blobs, unpacked layers and private layer copies that nothing references.
import ArgumentParser
import CAS
import Runtime

struct StoreGC: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "gc")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Flag(name: .customLong("dry-run")) var dryRun = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        try Self.collect(context, dryRun: dryRun)
    }

    /// The work of both `store gc` and `gc`.
    static func collect(_ context: CommandContext, dryRun: Bool) throws -> Int32 {
        let containers = try context.containers()
        for note in containers.store.notes { context.output.info(note) }
        // A killed create's half-made container holds a ref that would keep its layers forever.
        if !dryRun, containers.sweepAbandoned() > 0 { context.output.info("removed containers left by interrupted udocker processes") }
        let result = try StoreCleanup.run(store: containers.store, dryRun: dryRun)
        for note in result.notes { context.output.out(note) }
        let report = result.report
        let verb = dryRun ? "would remove" : "removed"
        for d in report.removedBlobs { context.output.out("\(verb) blob \(d)") }
        for d in report.removedLayers { context.output.out("\(verb) layer \(d)") }
        for c in report.removedPrivateCopies { context.output.out("\(verb) private layer copy \(c)") }
        for line in report.summary { context.output.out(line) }
        return 0
    }
}
