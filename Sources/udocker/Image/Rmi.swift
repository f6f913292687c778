// udocker rmi [-f] IMAGE: delete a local image and the store data only it used.
import ArgumentParser
import Runtime

struct Rmi: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "rmi")

    static let helpText = """
        rmi: delete an image in the local repository
        rmi [options] <repo/image:tag>
        -f                          :force removal
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
        let report = try images.remove(image, force: force)
        // Said once nothing refused (protected, in use), as udocker does after its checks.
        context.output.info("deleting image: \(image)")
        context.output.debug("removed \(report.removedBlobs.count) blob(s) and \(report.removedLayers.count) unpacked layer(s), \(report.bytesFreed) bytes; \(report.kept.count) object(s) still used elsewhere")
        return 0
    }
}
