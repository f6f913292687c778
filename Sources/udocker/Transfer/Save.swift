// udocker save [-o FILE | --output=FILE] [--format=docker|oci] IMAGE...: images as one tar.
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Runtime

struct Save: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "save")

    static let helpText = """
        save: save an image to file
        save [options] IMAGE [IMAGE...]
        --output=<image-file>       :save image to file
        -o <image-file>             :save image to file
        --format=docker             :docker save format (default; docker load, skopeo docker-archive:)
        --format=oci                :OCI image layout tar (skopeo oci-archive:)
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "save -o <imagefile> <repo/image:tag>", text: "Save image with layers to file")]
    }
    static var helpGroup: HelpGroup { .transfer }
    static var helpExamples: [String] {
        ["udocker save -o busybox.tar busybox:latest", "udocker save --format=oci -o images.tar busybox alpine:3.20"]
    }

    @Option(name: [.customShort("o"), .customLong("output")]) var output: String?
    @Option(name: .customLong("format")) var format: String = "docker"
    @Argument var arguments: [String] = []

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard let f = SaveRequest.Format(rawValue: format) else {
            throw UsageError(description: "unknown --format=\(format): use docker or oci")
        }
        var target = output ?? "-"
        var names = arguments
        if names.first == "-" {
            target = "-"
            names.removeFirst()
        }
        guard !names.isEmpty else { throw UsageError(description: "must specify the image(s) to save") }
        if target == "-" && isatty(1) == 1 {
            throw UsageError(description: "refusing to write a tar archive to a terminal: use -o <image-file> or redirect stdout")
        }
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        let saved = try ImageSave.run(SaveRequest(output: target, images: names, format: f), images: images)
        if target != "-" {
            context.output.info("saved \(saved.map(\.name.description).joined(separator: ", ")) to \(target)")
        }
        return 0
    }
}
