// udocker store VERB: direct access to the repository's content store (beyond udocker 1.3).
// The verbs live in one file each beside this one.
import ArgumentParser
import Foundation
import CAS
import Runtime

struct StoreGroup: UdockerCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        subcommands: [StoreIngest.self, StoreUnpack.self, StoreVerify.self, StoreGC.self, StoreStatsCommand.self, StoreHaveCommand.self])

    static let helpText = """
        store: work on the content store of the repository (blobs and unpacked layers)
        store ingest [--digest=sha256:<hex>] [--media-type=<type>] <file>|-
                                   :store a file (or stdin) as a blob, print its digest
                                    and size; with --digest the content must match
        store unpack <digest>      :unpack a stored layer blob into the store once
        store verify [--repair]    :rehash every blob and unpacked file, check the index;
                                    --repair rebuilds the index, removes corrupt objects
        store gc [--dry-run]       :remove blobs and layers nothing references
                                    (the same as 'udocker gc')
        store stats                :counts, sizes, dedup ratio, index location,
                                    the repositories and users it serves
        store have [-o <file>]     :list the blobs this store holds (JSON), for
                                    export --repo --have=<file> on another host
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "store ingest|unpack|verify|gc|stats|have", text: "Work on the content store")]
    }
    static var helpGroup: HelpGroup { .repository }
    static var helpExamples: [String] { ["udocker store verify", "udocker store gc --dry-run"] }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        context.output.out(Self.helpText)
        return 1
    }
}

extension CommandContext {
    /// The content store of the repository in use.
    func store() throws -> Store {
        let store = try repository().openStore()
        for note in store.notes { output.info(note) }
        return store
    }
}
