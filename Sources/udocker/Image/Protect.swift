// udocker protect IMAGE: protect an image against deletion (containers come with issue 4).
import ArgumentParser
import Runtime

struct Protect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "protect")

    static let helpText = """
        protect: protect a container or image against deletion
        protect <container-id or repo/image:tag>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "protect <repo/image:tag>", text: "Protect repository")]
    }
    static var helpGroup: HelpGroup { .protect }

    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        try ImageStore(repository: repo, store: try repo.openStore()).protect(image)
        return 0
    }
}
