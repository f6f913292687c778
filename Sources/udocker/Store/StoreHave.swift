// udocker store have [-o FILE]: what this store holds, for `export --repo --have=FILE` on another
// host to leave out (beyond udocker 1.3).
import ArgumentParser
import Runtime

struct StoreHaveCommand: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "have")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Option(name: .customShort("o")) var output: String = "-"

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let store = try context.store()
        let have = try StoreHave.of(store)
        try have.write(to: output)
        if output != "-" { context.output.info("wrote the \(have.blobs.count) blob digest(s) of \(store.layout.root) to \(output)") }
        return 0
    }
}
