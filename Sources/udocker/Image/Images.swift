// udocker images [-l] [-p] [--format=json]: list the repository's images in udocker 1.3.17's format.
import ArgumentParser
import CAS
import Runtime

struct Images: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "images")

    static let helpText = """
        images: list container images
        images [options]
        -l                         :long format
        -p                         :print platform
        --format=json              :one JSON document
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "images -l", text: "List container images")]
    }
    static var helpGroup: HelpGroup { .local }

    @Flag(name: .customShort("l")) var long = false
    @Flag(name: .customShort("p")) var platform = false
    @Option(name: .customLong("format")) var format: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let json = try OutputFormat.isJSON(format)
        let context = json ? context.infoOnStderr() : context
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        for name in try images.foreignImages() {
            context.output.warning("\(name) is an image of udocker 1.3's own format, which this udocker cannot use: pull it again (udocker pull \(name))")
        }
        if json {
            JSONDocuments.print(.array(try images.images().map { .object(JSONDocuments.image($0)) }), context.output)
            return 0
        }
        if context.output.level >= Output.info { context.output.out("REPOSITORY") }
        for img in try images.images() {
            context.output.out(Self.line(img.name.description, protected: img.isProtected,
                                         platform: platform ? img.record.platform.description : nil))
            if long {
                context.output.out(" \(img.directory)")
                for l in img.record.layers {
                    context.output.out("    /\(l.digest) (\(Self.megabytes(l.size)) MB)")
                }
            }
        }
        return 0
    }

    /// udocker 1.3.17's "%s    %c" (the whole name, four spaces, P for protected or '.'); with -p
    /// "%-18.18s %c %s" (platform, mark, name).
    static func line(_ name: String, protected: Bool, platform: String? = nil) -> String {
        let mark = protected ? "P" : "."
        guard let platform else { return name + "    " + mark }
        return String(platform.prefix(18)).padding(toLength: 18, withPad: " ", startingAt: 0) + " " + mark + " " + name
    }

    /// Whole megabytes, at least 1 for a non-empty layer (as udocker prints them).
    static func megabytes(_ size: Int64) -> Int64 {
        let mb = size / (1024 * 1024)
        return mb == 0 && size > 0 ? 1 : mb
    }
}
