// udocker store gc [--dry-run]: remove blobs and unpacked layers that no reference holds.
import ArgumentParser
import CAS
import Runtime

struct StoreGC: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "gc")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Flag(name: .customLong("dry-run")) var dryRun = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        for note in containers.store.notes { context.output.info(note) }
        // A killed create's half-made container holds a ref that would keep its layers forever.
        if !dryRun, containers.sweepAbandoned() > 0 { context.output.info("removed containers left by interrupted udocker processes") }
        let report = try containers.store.gc(dryRun: dryRun)
        let verb = dryRun ? "would remove" : "removed"
        for d in report.removedBlobs { context.output.out("\(verb) blob \(d)") }
        for d in report.removedLayers { context.output.out("\(verb) layer \(d)") }
        for line in report.summary { context.output.out(line) }
        return 0
    }
}
