// udocker protect CONTAINER|IMAGE: protect a container or an image against deletion (a container
// id or name is tried first, as udocker does).
import ArgumentParser
import Runtime

struct Protect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "protect")

    static let helpText = """
        protect: protect a container or image against deletion
        protect <container-id or repo/image:tag>
        """
    /// Unprotect's lines are listed here too, to keep udocker's order in `udocker --help`.
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "protect <repo/image:tag>", text: "Protect repository"),
         HelpLine(usage: "unprotect <repo/image:tag>", text: "Unprotect repository"),
         HelpLine(usage: "protect <container>", text: "Protect container"),
         HelpLine(usage: "unprotect <container>", text: "Unprotect container")]
    }
    static var helpGroup: HelpGroup { .protect }

    @Argument var target: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        if let id = containers.resolve(target) {
            try containers.protect(id)
        } else {
            try containers.images.protect(target)
        }
        return 0
    }
}
