// udocker unprotect IMAGE: remove an image's delete protection.
import ArgumentParser
import Runtime

struct Unprotect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "unprotect")

    static let helpText = """
        unprotect: remove delete protection
        unprotect <container-id or repo/image:tag>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "unprotect <repo/image:tag>", text: "Unprotect repository")]
    }
    static var helpGroup: HelpGroup { .protect }

    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        try ImageStore(repository: repo, store: try repo.openStore()).unprotect(image)
        return 0
    }
}
