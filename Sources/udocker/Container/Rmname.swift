// udocker rmname NAME: remove a container's name (the container stays).
import ArgumentParser
import Runtime

struct Rmname: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "rmname")

    static let helpText = """
        rmname: remove a name alias from container
        rmname <container-name>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "rmname <name>", text: "Delete name from container")]
    }
    static var helpGroup: HelpGroup { .local }

    @Argument var name: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        try context.containers().removeName(name)
        context.output.info("container name: \(name) removed.")
        return 0
    }
}
