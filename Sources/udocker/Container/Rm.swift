// udocker rm [-f] CONTAINER...: delete containers (not protected ones) and the store data only they held.
import ArgumentParser
import Runtime

struct Rm: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "rm")

    static let helpText = """
        rm: delete a container
        rm <container_id>
        -f                          :force removal
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "rm  <container-id|name>", text: "Delete container")]
    }
    static var helpGroup: HelpGroup { .local }

    /// Accepted for udocker compatibility: directories are always made writable before removal.
    @Flag(name: .customShort("f")) var force = false
    @Argument var containerIDs: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if containerIDs.isEmpty { throw UsageError(description: "must specify a container id or name: see 'udocker rm --help'") }
        let containers = try context.containers()
        var status: Int32 = 0
        for c in containerIDs {
            do {
                let id = try containers.removable(c)
                context.output.info("deleting container: \(id)")
                let report = try containers.remove(c)
                context.output.debug("released \(report.removedLayers.count) layer(s) and \(report.removedBlobs.count) blob(s) nothing else used")
            } catch {
                Output.error(String(describing: error))
                status = 1
            }
        }
        return status
    }
}
