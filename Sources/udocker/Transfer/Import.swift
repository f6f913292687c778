// udocker import [--mv] [--platform=P] FILE|- REPO:TAG; import --tocontainer|--clone [--name=N] FILE|-;
// import --repo FILE|-: a bundle written by export --repo.
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
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
        import --repo <file>|-     :import a bundle written by export --repo (its images
                                    and containers; what the store has is not stored again)
        --force                    :with --repo, replace a container that holds an
                                    arriving name
        --materialize=link|auto|copy :with --repo, how arriving containers are materialised
        --execmode=<mode>          :with --repo, set arriving containers up in this mode
        -q                         :with --repo, print nothing but errors
        --report=<file>            :with --repo, write what happened as JSON to <file>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "import <tar> <repo/image:tag>", text: "Import tar file (exported by docker)"),
         HelpLine(usage: "import - <repo/image:tag>", text: "Import from stdin (exported by docker)"),
         HelpLine(usage: "import --clone <tar>", text: "Import container exported with --clone"),
         HelpLine(usage: "import --repo <file>", text: "Import a bundle written by export --repo")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker import myc.tar myimage:v1", "udocker import --clone myc-clone.tar", "udocker import --repo repo.tar"]
    }

    @Flag(name: .customLong("mv")) var move = false
    @Flag(name: .customLong("tocontainer")) var toContainer = false
    @Flag(name: .customLong("clone")) var clone = false
    @Option(name: .customLong("name")) var name: String?
    @Option(name: .customLong("platform")) var platform: String?
    @Flag(name: .customLong("repo")) var bundle = false
    @Flag(name: .customLong("force")) var force = false
    @Option(name: .customLong("materialize")) var materialize: String?
    @Option(name: .customLong("execmode")) var execmode: String?
    @Flag(name: .customShort("q")) var quiet = false
    @Option(name: .customLong("report")) var report: String?
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard let source = arguments.first else { throw UsageError(description: "must specify tar filename") }
        if bundle { return try importBundle(source, context) }
        if force || materialize != nil || execmode != nil || report != nil {
            throw UsageError(description: "--force, --materialize, --execmode and --report go with --repo")
        }
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

    /// import --repo FILE|-: everything the bundle holds, with sync's arrival options.
    private func importBundle(_ source: String, _ context: CommandContext) throws -> Int32 {
        guard arguments.count == 1 else { throw UsageError(description: "import --repo takes only the bundle (or - for stdin)") }
        if toContainer || clone || move || name != nil || platform != nil {
            throw UsageError(description: "--repo cannot be used with --tocontainer, --clone, --mv, --name or --platform")
        }
        if let m = materialize, !["link", "auto", "copy"].contains(m) {
            throw UsageError(description: "--materialize takes link, auto or copy, not '\(m)'")
        }
        let silent = quiet || context.output.level < Output.info
        let bars = !silent && isatty(2) == 1
        let request = BundleImportRequest(source: source,
                                          arrival: SyncArrivalOptions(force: force, materialize: materialize, execmode: execmode),
                                          maxLayerExpansion: try context.configuration.maxLayerExpansion,
                                          progress: bars ? SyncOutput.progressBars(state: "storing") : nil)
        let result = try BundleImport.run(request, repository: try context.repository())
        try SyncOutput.conclude(result, reportFile: report, silent: silent, bars: bars, sent: "stored", present: "already here",
                                context: context) { r in
            "imported \(r.images) image(s) and \(r.containers) container(s) from \(source == "-" ? "standard input" : source): "
                + "\(r.objectsSent) object(s) stored (\(formatBytes(UInt64(r.objectBytes)))), \(r.objectsPresent) object(s) this store already had"
        }
        return 0
    }
}
