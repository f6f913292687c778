// udocker rmi [-f] IMAGE: delete a local image and the store data only it used (containers made from
// it keep theirs).
import ArgumentParser
import Runtime

struct Rmi: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "rmi")

    static let helpText = """
        rmi: delete an image in the local repository
        rmi [options] <repo/image:tag>
        -f                          :force removal (also of an image whose record is damaged)
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "rmi <repo/image:tag>", text: "Delete a local image")]
    }
    static var helpGroup: HelpGroup { .local }

    @Flag(name: .customShort("f")) var force = false
    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        let images = try ContainerStore.imageStore(repository: repo, store: try repo.openStore())
        let removal = try images.remove(image, force: force)
        // Said once nothing refused (protected), as udocker does after its checks.
        context.output.info("deleting image: \(image)")
        let report = removal.released
        if !removal.containers.isEmpty {
            context.output.info("the container(s) created from \(removal.name) keep its layers in the store until they are removed: \(removal.containers.joined(separator: ", "))")
        }
        context.output.debug("removed \(report.removedBlobs.count) blob(s) and \(report.removedLayers.count) unpacked layer(s), \(report.bytesFreed) bytes; \(report.kept.count) object(s) still used elsewhere")
        return 0
    }
}
