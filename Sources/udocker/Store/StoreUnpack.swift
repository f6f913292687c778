// udocker store unpack DIGEST: unpack a stored layer blob into the store's layer area, once.
import ArgumentParser
import CAS
import Runtime

struct StoreUnpack: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "unpack")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Argument var digest: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let blob = try Digest(parsing: digest)
        let store = try context.store()
        let layer = try store.unpackLayer(blob: blob)
        for skipped in layer.skipped {
            context.output.warning("skipped \(skipped.path): \(skipped.reason)")
        }
        context.output.out("\(layer.diffID) \(layer.fileCount) files \(layer.totalBytes) bytes (\(layer.compression))")
        return 0
    }
}
