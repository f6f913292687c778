// udocker export -o FILE CONTAINER | export [-] CONTAINER [--clone]: a container as a tar.
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
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "export -o <tar> <container>", text: "Export container rootfs to file"),
         HelpLine(usage: "export --clone -o <tar> <container>", text: "Export container with metadata to file")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker export -o myc.tar mycontainer", "udocker export - mycontainer | gzip > myc.tar.gz",
         "udocker export --clone -o myc-clone.tar mycontainer"]
    }

    @Flag(name: .customShort("o")) var toFile = false
    @Flag(name: .customLong("clone")) var clone = false
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
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
}
