// udocker load [-i FILE | --input=FILE] [REPO/IMAGE]: images from `docker save` or an OCI layout tar.
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Registry
import Runtime

struct Load: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "load")

    static let helpText = """
        load: load an image saved by docker with 'docker save' or an OCI image layout
        load [options] [<repo/image>]
        --input=<image-file>        :load image file saved by docker
        -i <image-file>             :load image file saved by docker
        --platform=os/architecture[/variant] :image to take from a multi-platform archive
        reads standard input when no file is given; <repo/image> renames the images loaded;
        an image whose name exists is not loaded (the others are)
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "load -i <exported-image>", text: "Load image from file (saved by docker)"),
         HelpLine(usage: "load < <exported-image>", text: "Load image from stdin (saved by docker)")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker load -i docker-saved.tar", "docker save busybox | udocker load"]
    }

    @Option(name: [.customShort("i"), .customLong("input")]) var input: String?
    @Option(name: .customLong("platform")) var platform: String?
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        var source = input ?? "-"
        var rest = arguments
        if rest.first == "-" {
            source = "-"
            rest.removeFirst()
        }
        guard rest.count <= 1 else { throw UsageError(description: "load takes at most one <repo/image> name") }
        if source == "-" && isatty(0) == 1 {
            throw UsageError(description: "must specify filename of docker exported image: load -i <file>, or give it on standard input")
        }
        let p = try platform.map { try Platform(parsing: $0) }
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        let report = try ImageLoad.run(LoadRequest(source: source, repository: rest.first, platform: p,
                                                  maxLayerExpansion: try context.configuration.maxLayerExpansion), images: images)
        for n in report.notes { context.output.warning(n) }
        for n in report.skipped { context.output.info("image \(n) exists already, not loaded (load never replaces an image)") }
        for img in report.images { context.output.out(img.name.description) }
        return 0
    }
}
