// udocker inspect [-p] [--format=json] CONTAINER|IMAGE: print a container's or an image's config JSON
// (containers first, as udocker does); -p prints a container's ROOT directory; --format=json wraps the
// config in what ps or images --format=json say about it.
import ArgumentParser
import CAS
import Runtime

struct Inspect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "inspect")

    static let helpText = """
        inspect: print container metadata JSON from an imagerepo or container
        inspect <container-id or repo/image:tag>
        -p                         :print container directory path on host
        --format=json              :the config with the container's or image's details, as one JSON document
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "inspect -p <repo/image:tag>", text: "Print image or container metadata")]
    }
    static var helpGroup: HelpGroup { .inspect }
    static var helpExamples: [String] { ["udocker inspect mycontainer", "udocker inspect -p mycontainer"] }

    @Flag(name: .customShort("p")) var printPath = false
    @Option(name: .customLong("format")) var format: String?
    @Argument var target: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if try OutputFormat.isJSON(format) {
            if printPath { throw UsageError(description: "-p and --format=json cannot be used together: the JSON document has the ROOT directory as \"root\"") }
            return try json(context.infoOnStderr())
        }
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

    /// {"kind": "container", ps's fields, "config": container.json} or {"kind": "image", images's
    /// fields, "config": the image config}.
    private func json(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        var doc: [String: JSONValue]
        let config: [UInt8]
        if let id = containers.resolve(target) {
            let c = try containers.require(id)
            let defaultMode = context.configuration.string("override_default_execution_mode") ?? ContainerStore.defaultExecMode
            doc = JSONDocuments.container(c, containers: containers, defaultMode: defaultMode)
            doc["kind"] = .string("container")
            config = try containers.configJSON(id)
        } else {
            let img = try containers.images.require(target)
            doc = JSONDocuments.image(img)
            doc["kind"] = .string("image")
            config = try FileIO.readFile(containers.store.blobPath(img.record.configDigest))
        }
        doc["config"] = JSONPrint.parse(config) ?? .null
        JSONDocuments.print(.object(doc), context.output)
        return 0
    }
}
