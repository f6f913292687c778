// udocker images [-l]: list the repository's images in udocker 1.3's format.
import ArgumentParser
import CAS
import Runtime

struct Images: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "images")

    static let helpText = """
        images: list container images
        images [options]
        -l                         :long format
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "images -l", text: "List container images")]
    }
    static var helpGroup: HelpGroup { .local }

    @Flag(name: .customShort("l")) var long = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        if context.output.level >= Output.info { context.output.out("REPOSITORY") }
        for img in try images.images() {
            context.output.out(Self.line(img.name.description, protected: img.isProtected))
            if long {
                context.output.out("  \(img.directory)")
                for l in img.record.layers {
                    context.output.out("    /\(l.digest) (\(Self.megabytes(l.size)) MB)")
                }
            }
        }
        return 0
    }

    /// "%-60.60s %c": the name cut or padded to 60 columns, then P (protected) or '.'.
    static func line(_ name: String, protected: Bool) -> String {
        String(name.prefix(60)).padding(toLength: 60, withPad: " ", startingAt: 0) + " " + (protected ? "P" : ".")
    }

    /// Whole megabytes, at least 1 for a non-empty layer (as udocker prints them).
    static func megabytes(_ size: Int64) -> Int64 {
        let mb = size / (1024 * 1024)
        return mb == 0 && size > 0 ? 1 : mb
    }
}
