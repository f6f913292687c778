// udocker help [command]: the general help, or one command's help.
import ArgumentParser

struct Help: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "help")

    static let helpText = """
        help: Print help information
        help [command]
        udocker --help [command]
        udocker <command> --help
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "--help [command]", text: "Command specific help")]
    }
    static var helpGroup: HelpGroup { .general }
    static var needsConfiguration: Bool { false }

    @Argument var topic: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard let topic else {
            context.output.out(GeneralHelp.text())
            return 0
        }
        guard let type = Commands.find(topic) else {
            throw UsageError(description: Runner.invalidCommand(topic))
        }
        context.output.out(type.helpText)
        return 0
    }
}
