// udocker export -o FILE CONTAINER | export [-] CONTAINER [--clone]: a container as a tar;
// export --repo -o FILE|- [--have=FILE] [NAME...]: images and containers as an offline bundle.
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Runtime

struct Export: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "export")

    static let helpText = """
        export: export container (directory tree) to a tar file or stdout
        export -o <tar-file> <container-id>
        export - <container-id>
        -o                         :export to file, instead of stdout
        --clone                    :export in clone (udocker) format
        export --repo -o <file> [--have=<file>] [<repo/image:tag>|<container>...]
        export --repo - [<name>...]
        --repo                     :export images and containers of this repository as
                                    one bundle (an OCI layout with container deltas) for
                                    import --repo on a host with no connection; no names:
                                    everything
        --have=<file>              :leave out what the target holds (its store have -o)
        --images, --containers     :with --repo, one kind only
        -q                         :with --repo, print nothing but errors
        --report=<file>            :with --repo, write what happened as JSON to <file>
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "export -o <tar> <container>", text: "Export container rootfs to file"),
         HelpLine(usage: "export --clone -o <tar> <container>", text: "Export container with metadata to file"),
         HelpLine(usage: "export --repo -o <file> [<name>...]", text: "Export images and containers as a bundle")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker export -o myc.tar mycontainer", "udocker export - mycontainer | gzip > myc.tar.gz",
         "udocker export --clone -o myc-clone.tar mycontainer",
         "udocker export --repo -o repo.tar --have=target.have"]
    }

    @Flag(name: .customShort("o")) var toFile = false
    @Flag(name: .customLong("clone")) var clone = false
    @Flag(name: .customLong("repo")) var bundle = false
    @Option(name: .customLong("have")) var have: String?
    @Flag(name: .customLong("images")) var imagesOnly = false
    @Flag(name: .customLong("containers")) var containersOnly = false
    @Flag(name: .customShort("q")) var quiet = false
    @Option(name: .customLong("report")) var report: String?
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if bundle { return try exportBundle(context) }
        if have != nil || imagesOnly || containersOnly || report != nil {
            throw UsageError(description: "--have, --images, --containers and --report go with --repo")
        }
        let output: String
        let container: String
        switch (toFile, arguments.count) {
        case (true, 2): (output, container) = (arguments[0], arguments[1])
        case (false, 2) where arguments[0] == "-": (output, container) = ("-", arguments[1])
        case (false, 1): (output, container) = ("-", arguments[0])
        default: throw UsageError(description: "export takes -o <tar-file> <container-id>, or - <container-id>")
        }
        if output == "-" && isatty(1) == 1 {
            throw UsageError(description: "refusing to write a tar archive to a terminal: use -o <tar-file> or redirect stdout")
        }
        let repo = try context.repository()
        // Said once the container is known, as udocker does (an unknown one is only an error).
        if output != "-" && ContainerStore.resolve(container, containersdir: repo.containersdir) != nil {
            context.output.info("exporting to file " + output)
        }
        let report = try ContainerExport.export(container, repository: repo, to: output, clone: clone)
        for s in report.skipped { context.output.warning("not exported: " + s) }
        return 0
    }

    /// export --repo: the output is the first argument after -o or "-", else standard output.
    private func exportBundle(_ context: CommandContext) throws -> Int32 {
        if clone { throw UsageError(description: "--repo and --clone cannot be used together") }
        var names = arguments
        var output = "-"
        if toFile {
            guard !names.isEmpty else { throw UsageError(description: "export --repo -o needs the bundle's file name") }
            output = names.removeFirst()
        } else if names.first == "-" {
            names.removeFirst()
        }
        if output == "-" && isatty(1) == 1 {
            throw UsageError(description: "refusing to write a bundle to a terminal: use -o <file> or redirect stdout")
        }
        let silent = quiet || context.output.level < Output.info
        let bars = !silent && output != "-" && isatty(2) == 1
        let request = BundleExportRequest(output: output,
                                          selection: SyncSelection(names: names, images: !containersOnly || imagesOnly,
                                                                   containers: !imagesOnly || containersOnly),
                                          haveFile: have, progress: bars ? SyncOutput.progressBars(state: "writing") : nil)
        let result = try BundleExport.run(request, repository: try context.repository())
        try SyncOutput.conclude(result, reportFile: report, silent: silent, bars: bars, sent: "written",
                                present: "left out (the target has them)", context: context) { [have] r in
            "exported \(r.images) image(s) and \(r.containers) container(s) to \(output == "-" ? "standard output" : output): "
                + "\(r.objectsSent) object(s) written (\(formatBytes(UInt64(r.objectBytes))))"
                + (have == nil ? "" : ", \(r.objectsPresent) left out that the target has")
        }
        return 0
    }
}
