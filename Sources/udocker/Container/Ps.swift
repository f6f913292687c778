// udocker ps [-m] [-s] [-p] [--format=json]: list containers in udocker 1.3's format (id, protected,
// writable, execution mode, size in MB of the container's own files, platform, names, image).
import ArgumentParser
import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

struct Ps: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "ps")

    static let helpText = """
        ps: list containers
        -m                         :print execution mode
        -s                         :print size in MB (the container's own files, not the store's)
        -p                         :print platform
        --format=json              :one JSON document (-s adds the sizes in bytes)
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "ps -m -s", text: "List created containers")]
    }
    static var helpGroup: HelpGroup { .local }
    static var helpExamples: [String] { ["udocker ps -m -s"] }

    @Flag(name: .customShort("m")) var mode = false
    @Flag(name: .customShort("s")) var size = false
    @Flag(name: .customShort("p")) var platform = false
    @Option(name: .customLong("format")) var format: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if try OutputFormat.isJSON(format) { return try json(context.infoOnStderr()) }
        let containers = try context.containers()
        var header = Self.field("CONTAINER ID", 36, 36) + " P M "
        if mode { header += "MOD " }
        if size { header += "SIZE " }
        if platform { header += "PLATFORM           " }
        header += Self.field("NAMES", 18, nil) + " " + Self.field("IMAGE", 20, 20)
        context.output.out(header)
        let defaultMode = context.configuration.string("override_default_execution_mode") ?? ContainerStore.defaultExecMode
        for c in try containers.containers() {
            var line = Self.field(c.id, 36, 36) + " " + (c.isProtected ? "P" : ".") + " " + Self.writable(c.root) + " "
            if mode { line += Self.field(containers.execMode(c.id) ?? defaultMode, 2, 2) + " " }
            if size {
                // du -s -m rounds up; udocker prints -1 when du fails ("%5.5s": right-aligned).
                let mb = containers.diskUsage(c.id).map { String(($0.own + (1 << 20) - 1) >> 20) } ?? "-1"
                line += String(repeating: " ", count: max(0, 5 - mb.count)) + mb.prefix(5) + " "
            }
            if platform { line += Self.field(Self.platform(try? containers.configJSON(c.id)), 18, 18) + " " }
            let names = c.names.isEmpty ? "" : "[" + c.names.map { "'\($0)'" }.joined(separator: ", ") + "]"
            line += Self.field(names, 18, 100) + " " + Self.field(c.image, 20, 100)
            context.output.out(line)
        }
        return 0
    }

    private func json(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        let defaultMode = context.configuration.string("override_default_execution_mode") ?? ContainerStore.defaultExecMode
        let list = try containers.containers().map { c in
            JSONValue.object(JSONDocuments.container(c, containers: containers, defaultMode: defaultMode,
                                                     usage: size ? containers.diskUsage(c.id) : nil))
        }
        JSONDocuments.print(.array(list), context.output)
        return 0
    }

    /// Python's "%-W.Ps": cut to P characters, then padded to W.
    static func field(_ s: String, _ width: Int, _ precision: Int?) -> String {
        var t = precision.map { String(s.prefix($0)) } ?? s
        if t.count < width { t += String(repeating: " ", count: width - t.count) }
        return t
    }

    /// udocker's M column: W writable ROOT, R read-only, N no ROOT, D ROOT not a directory.
    static func writable(_ root: String) -> String {
        var st = stat()
        guard stat(root, &st) == 0 else { return "N" }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "D" }
        return access(root, W_OK) == 0 ? "W" : "R"
    }

    /// "os/architecture[/variant]" from container.json, as udocker prints it.
    static func platform(_ json: [UInt8]?) -> String {
        guard let json, let o = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else {
            return "unknown/unknown"
        }
        let os = o["os"] as? String ?? "unknown"
        let arch = o["architecture"] as? String ?? "unknown"
        if let v = o["variant"] as? String, !v.isEmpty { return "\(os)/\(arch)/\(v)" }
        return "\(os)/\(arch)"
    }
}
