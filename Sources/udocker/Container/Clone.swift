// udocker clone [--name=NAME] CONTAINER: duplicate a container; files still shared with the store are
// linked again, the rest copied. Prints the new container id.
import ArgumentParser
import Runtime

struct Clone: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "clone")

    static let helpText = """
        clone: create a duplicate copy of an existing container
        clone <source-container-id>
        --name=<container-name>    :add an alias to the cloned container
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "clone <container_id>", text: "Duplicate container")]
    }
    static var helpGroup: HelpGroup { .local }

    @Option(name: .customLong("name")) var name: String?
    @Argument var container: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        context.output.debug("cloning container id: \(container)")
        let made = try containers.clone(container, name: name)
        context.printNotes(made.report)
        let r = made.report
        context.output.debug("\(r.linked) linked, \(r.copied) copied (\(r.reflinked) by reflink), \(r.directories) directories")
        context.output.out(made.id)
        return 0
    }
}
