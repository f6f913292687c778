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
        let report = try context.store().gc(dryRun: dryRun)
        let verb = dryRun ? "would remove" : "removed"
        for d in report.removedBlobs { context.output.out("\(verb) blob \(d)") }
        for d in report.removedLayers { context.output.out("\(verb) layer \(d)") }
        for line in report.summary { context.output.out(line) }
        return 0
    }
}
