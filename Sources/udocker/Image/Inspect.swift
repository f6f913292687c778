// udocker inspect [-p] IMAGE: print an image's config JSON (containers come with issue 4).
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
        [HelpLine(usage: "inspect <repo/image:tag>", text: "Low level information on image or container")]
    }
    static var helpGroup: HelpGroup { .inspect }

    @Flag(name: .customShort("p")) var printPath = false
    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        let store = try repo.openStore()
        let img = try ImageStore(repository: repo, store: store).require(image)
        if printPath {
            // udocker prints a container's ROOT; an image has no directory to run in.
            throw UsageError(description: "-p prints a container's directory; \(img.name) is an image, create a container from it first")
        }
        let bytes = try FileIO.readFile(store.blobPath(img.record.configDigest))
        context.output.out(JSONPrint.udockerStyle(bytes) ?? String(decoding: bytes, as: UTF8.self))
        return 0
    }
}
