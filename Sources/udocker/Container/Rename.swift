// udocker rename NAME NEW: move a container's name to a new one.
import ArgumentParser
import Runtime

struct Rename: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "rename")

    static let helpText = """
        rename: change a name alias
        name <container-name> <new-container-name>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "rename <name> <new_name>", text: "Change container name")]
    }
    static var helpGroup: HelpGroup { .local }

    @Argument var name: String
    @Argument var newName: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        try context.containers().rename(name, to: newName)
        return 0
    }
}
