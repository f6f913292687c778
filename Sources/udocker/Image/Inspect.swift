// udocker inspect [-p] CONTAINER|IMAGE: print a container's or an image's config JSON (containers
// first, as udocker does); -p prints a container's ROOT directory.
import ArgumentParser
import CAS
import Runtime

struct Inspect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "inspect")

    static let helpText = """
        inspect: print container metadata JSON from an imagerepo or container
        inspect <container-id or repo/image:tag>
        -p                         :print container directory path on host
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "inspect -p <repo/image:tag>", text: "Print image or container metadata")]
    }
    static var helpGroup: HelpGroup { .inspect }
    static var helpExamples: [String] { ["udocker inspect mycontainer", "udocker inspect -p mycontainer"] }

    @Flag(name: .customShort("p")) var printPath = false
    @Argument var target: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        if let id = containers.resolve(target) {
            if printPath {
                context.output.out(containers.directory(id) + "/" + ContainerStore.rootDir)
                return 0
            }
            let bytes = try containers.configJSON(id)
            context.output.out(JSONPrint.udockerStyle(bytes) ?? String(decoding: bytes, as: UTF8.self))
            return 0
        }
        let img = try containers.images.require(target)
        if printPath {
            // udocker prints a container's ROOT; an image has no directory to run in.
            throw UsageError(description: "-p prints a container's directory; \(img.name) is an image, create a container from it first")
        }
        let bytes = try FileIO.readFile(containers.store.blobPath(img.record.configDigest))
        context.output.out(JSONPrint.udockerStyle(bytes) ?? String(decoding: bytes, as: UTF8.self))
        return 0
    }
}
