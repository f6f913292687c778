// --format=json of images, ps and inspect: one JSON document on stdout with the field names
// docs/manual.md lists (sorted keys, 4-space indent, ASCII), Info lines moved to stderr.
import CAS
import Foundation
import Runtime

enum OutputFormat {
    /// Whether `--format=VALUE` asks for JSON (no option, or `text`, is the udocker table).
    static func isJSON(_ value: String?) throws -> Bool {
        switch value {
        case nil, "text": return false
        case "json": return true
        default: throw UsageError(description: "unknown --format=\(value ?? ""): use --format=json (or leave it out for udocker's table)")
        }
    }
}

extension CommandContext {
    /// The same context with Info lines on stderr, so that stdout holds only the JSON document (a
    /// first command creates the repository and says so).
    func infoOnStderr() -> CommandContext {
        CommandContext(general: general, environment: environment, configuration: configuration,
                       output: Output(level: output.level, infoFD: 2))
    }
}

extension JSONValue {
    static func optional(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    static func count<I: BinaryInteger>(_ n: I) -> JSONValue { .int(Int64(clamping: n)) }
}

/// The JSON objects of images and containers.
enum JSONDocuments {
    static func image(_ img: LocalImage) -> [String: JSONValue] {
        let r = img.record
        return [
            "name": .string(img.name.description),
            "tag": .string(img.name.tag),
            "protected": .bool(img.isProtected),
            "platform": .string(r.platform.description),
            "directory": .string(img.directory),
            "source": .object(["reference": .string(r.reference), "registry": .string(r.registry),
                               "repository": .string(r.repository)]),
            "manifestDigest": .string(r.manifestDigest.description),
            "manifestMediaType": .string(r.manifestMediaType),
            "indexDigest": .optional(r.indexDigest?.description),
            "configDigest": .string(r.configDigest.description),
            "recorded": .string(r.created),
            "size": .count(r.layers.reduce(Int64(0)) { $0 + $1.size }),
            "layers": .array(r.layers.map { l in
                .object(["digest": .string(l.digest.description), "diffID": .string(l.diffID.description),
                         "mediaType": .string(l.mediaType), "size": .count(l.size)])
            }),
        ]
    }

    /// A container; the size fields are null unless `usage` is given (`ps -s`, and a ROOT to measure).
    static func container(_ c: ContainerInfo, containers: ContainerStore, defaultMode: String,
                          usage: DiskUsage? = nil) -> [String: JSONValue] {
        let present = (try? containers.images.image(named: c.image)).flatMap { $0 } != nil
        let rootStates = ["W": "writable", "R": "read-only", "N": "missing", "D": "not-a-directory"]
        var o: [String: JSONValue] = [
            "id": .string(c.id),
            "names": .array(c.names.map { .string($0) }),
            "image": .string(c.image),
            "imagePresent": .bool(present),
            "protected": .bool(c.isProtected),
            "directory": .string(c.directory),
            "root": .string(c.root),
            "rootState": .string(rootStates[Ps.writable(c.root)] ?? "missing"),
            "execMode": .string(containers.execMode(c.id) ?? defaultMode),
            "platform": .string(Ps.platform(try? containers.configJSON(c.id))),
            "materialize": .optional(containers.materializeInfo(c.id)?.mode),
            "ownBytes": .null,
            "sharedBytes": .null,
        ]
        if let u = usage {
            o["ownBytes"] = .count(u.own)
            o["sharedBytes"] = .count(u.shared)
        }
        return o
    }

    /// Prints `value` as the command's one document.
    static func print(_ value: JSONValue, _ output: Output) {
        output.out(JSONPrint.document(value))
    }
}
