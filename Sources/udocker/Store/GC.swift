// udocker gc [--dry-run]: the same as 'udocker store gc', for every repository and member the store
// serves (beyond udocker 1.3).
import ArgumentParser
import Runtime

struct GC: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "gc")

    static let helpText = """
        gc: remove what no repository of the store references
        gc [--dry-run]
        Drops from the store's registry the repositories that no longer exist,
        then removes the blobs, unpacked layers and private layer copies that no
        image, container or running pull of any repository or member of the
        store references; prints what it removed and the bytes freed.
        --dry-run                  :print what would be removed, change nothing
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "gc [--dry-run]", text: "Remove what no repository of the store uses")]
    }
    static var helpGroup: HelpGroup { .repository }
    static var helpExamples: [String] { ["udocker gc --dry-run", "udocker gc"] }

    @Flag(name: .customLong("dry-run")) var dryRun = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        try StoreGC.collect(context, dryRun: dryRun)
    }
}
