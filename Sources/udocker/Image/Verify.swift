// udocker verify IMAGE: rehash every blob and unpacked file of an image; exit status 0 ok, 1 bad.
import ArgumentParser
import CAS
import Runtime

struct Verify: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "verify")

    static let helpText = """
        verify: verify an image
        verify <repo/image:tag>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "verify <repo/image:tag>", text: "Verify a pulled image")]
    }
    static var helpGroup: HelpGroup { .inspect }

    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        let store = try repo.openStore()
        let img = try ImageStore(repository: repo, store: store).require(image)
        context.output.info("verifying: \(img.name)")
        var problems = [String]()
        for d in img.record.blobs { problems += try store.verify(blob: d).problems.map(\.message) }
        for l in img.record.layers { problems += try store.verify(layer: l.diffID).problems.map(\.message) }
        if problems.isEmpty {
            context.output.info("image Ok")
            return 0
        }
        for p in problems { Output.error(p) }
        Output.error("image verification failure: pull \(img.name) again (after 'udocker rmi -f \(img.name)')")
        return 1
    }
}
