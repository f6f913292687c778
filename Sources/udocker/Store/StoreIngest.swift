// udocker store ingest FILE|-: store a file or stdin as a blob and print "sha256:<hex> <size>".
import ArgumentParser
import CAS
import Runtime

struct StoreIngest: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "ingest")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Option(name: .customLong("digest")) var digest: String?
    @Option(name: .customLong("media-type")) var mediaType: String?
    @Argument var file: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let expected = try digest.map { try Digest(parsing: $0) }
        let store = try context.store()
        let record = file == "-"
            ? try store.ingest(fd: 0, expected: expected, mediaType: mediaType)
            : try store.ingest(fileAt: file, expected: expected, mediaType: mediaType)
        context.output.out("\(record.digest) \(record.size)")
        return 0
    }
}
