// udocker tag SRC DST: give a local image another name.
import ArgumentParser
import Runtime

struct Tag: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "tag")

    static let helpText = """
        tag: create a new image name (tag) for an existing image
        tag <repo/image:tag> <new-repo/image:tag>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "tag <repo/image:tag> <repo2/image2:tag2>", text: "Tag an image")]
    }
    static var helpGroup: HelpGroup { .local }

    @Argument var source: String
    @Argument var target: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        try ImageStore(repository: repo, store: try repo.openStore()).tag(source, target)
        return 0
    }
}
