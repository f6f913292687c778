// udocker name CONTAINER NAME: give a container a name (a symlink in containers/).
import ArgumentParser
import Runtime

struct Name: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "name")

    static let helpText = """
        name: give a name alias to a container
        name <container-id> <container-name>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "name <container_id> <name>", text: "Give name to container")]
    }
    static var helpGroup: HelpGroup { .local }

    @Argument var container: String
    @Argument var name: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        try context.containers().setName(container, name)
        return 0
    }
}
