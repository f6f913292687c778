// udocker import [--mv] [--platform=P] FILE|- REPO:TAG; import --tocontainer|--clone [--name=N] FILE|-
import ArgumentParser
import Registry
import Runtime

struct Import: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "import")

    static let helpText = """
        import: import image (directory tree) from tar file or stdin
        import <tar-file> <repo/image:tag>
        import - <repo/image:tag>
        --mv                      :if possible move tar-file instead of copy
        --tocontainer             :import to container, no image is created
        --clone                   :import udocker container format with metadata
        --name=<container-name>   :with --tocontainer or --clone to add an alias
        --platform=os/architecture[/variant] :platform of the imported image
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "import <tar> <repo/image:tag>", text: "Import tar file (exported by docker)"),
         HelpLine(usage: "import - <repo/image:tag>", text: "Import from stdin (exported by docker)"),
         HelpLine(usage: "import --clone <tar>", text: "Import container exported with --clone")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker import myc.tar myimage:v1", "udocker import --clone myc-clone.tar"]
    }

    @Flag(name: .customLong("mv")) var move = false
    @Flag(name: .customLong("tocontainer")) var toContainer = false
    @Flag(name: .customLong("clone")) var clone = false
    @Option(name: .customLong("name")) var name: String?
    @Option(name: .customLong("platform")) var platform: String?
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard let source = arguments.first else { throw UsageError(description: "must specify tar filename") }
        let image = arguments.count > 1 ? arguments[1] : nil
        guard arguments.count <= 2 else { throw UsageError(description: "import takes <tar-file> <repo/image:tag>") }
        if toContainer && clone { throw UsageError(description: "--tocontainer and --clone cannot be used together") }
        if name != nil && !toContainer && !clone { throw UsageError(description: "--name= goes with --tocontainer or --clone") }
        let repo = try context.repository()
        if clone {
            if image != nil { throw UsageError(description: "import --clone takes only the tar file (the container keeps its own image name)") }
            let (id, notes) = try ContainerImport.importClone(ContainerImportRequest(source: source, name: name), repository: repo)
            for n in notes { context.output.warning(n) }
            context.output.out(id)
            return 0
        }
        if toContainer {
            let (id, notes) = try ContainerImport.importToContainer(ContainerImportRequest(source: source, name: name, image: image),
                                                                    repository: repo)
            for n in notes { context.output.warning(n) }
            context.output.out(id)
            return 0
        }
        guard let image else { throw UsageError(description: "must specify the image name: import <tar-file> <repo/image:tag>") }
        let p = try platform.map { try Platform(parsing: $0) }
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        let local = try ImageImport.run(ImportRequest(source: source, image: image, platform: p, move: move,
                                                               maxLayerExpansion: try context.configuration.maxLayerExpansion), images: images)
        context.output.info("imported \(local.name) (\(local.record.manifestDigest))")
        return 0
    }
}
