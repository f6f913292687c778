// udocker showconf: every configuration key and its effective value, in udocker 1.3's format.
import ArgumentParser
import Runtime

struct Showconf: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "showconf")

    static let helpText = """
        showconf: Print all configuration options
        showconf
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "showconf", text: "Print all configuration options")]
    }
    static var helpGroup: HelpGroup { .general }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let rule = String(repeating: "-", count: 80)
        context.output.out(rule)
        context.output.out("\t\tConfiguration options")
        for entry in context.configuration.entries {
            context.output.out("\(entry.key) = \(entry.value)")
        }
        context.output.out(rule)
        return 0
    }
}
