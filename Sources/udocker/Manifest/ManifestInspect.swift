// udocker manifest inspect IMAGE: print the manifest of a local image (beyond udocker 1.3).
import ArgumentParser
import CAS
import Runtime

struct Manifest: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "manifest")

    static let helpText = """
        manifest: print the manifest of a local image
        manifest inspect <repo/image:tag>
        --index                    :print the image index (multi-platform list)
                                    the image was chosen from, if any
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "manifest inspect <repo/image:tag>", text: "Print the image manifest")]
    }
    static var helpGroup: HelpGroup { .inspect }

    @Argument var action: String
    @Argument var image: String
    @Flag(name: .customLong("index")) var index = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard action == "inspect" else {
            throw UsageError(description: "unknown manifest action '\(action)': use 'udocker manifest inspect IMAGE'")
        }
        let repo = try context.repository()
        let store = try repo.openStore()
        let img = try ImageStore(repository: repo, store: store).require(image)
        var digest = img.record.manifestDigest
        if index {
            guard let d = img.record.indexDigest else {
                throw UsageError(description: "\(img.name) was not pulled through an image index")
            }
            digest = d
        }
        let bytes = try FileIO.readFile(store.blobPath(digest))
        context.output.out(JSONPrint.udockerStyle(bytes) ?? String(decoding: bytes, as: UTF8.self))
        return 0
    }
}
