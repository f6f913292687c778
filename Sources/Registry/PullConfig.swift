// Reading what a pull needs from an image config (diff_ids, platform), and turning a legacy
// schema 1 manifest into layers plus a synthesized config.
import CAS
import Foundation

/// The parts of an image config a pull checks and records.
public struct ImageConfigSummary: Sendable, Equatable {
    public var diffIDs: [Digest]
    public var platform: Platform

    public static func parse(_ bytes: [UInt8]) throws -> ImageConfigSummary {
        struct Config: Decodable {
            struct RootFS: Decodable {
                let type: String?
                let diff_ids: [Digest]?
            }
            let architecture: String?
            let os: String?
            let variant: String?
            let rootfs: RootFS?
        }
        let c: Config
        do { c = try JSONDecoder().decode(Config.self, from: Data(bytes)) } catch {
            throw RegistryError.badConfig(DecodingProblem.describe(error))
        }
        guard let ids = c.rootfs?.diff_ids else { throw RegistryError.badConfig("it has no rootfs.diff_ids") }
        return ImageConfigSummary(diffIDs: ids, platform: Platform(os: c.os ?? "linux", architecture: c.architecture ?? "unknown",
                                                                   variant: c.variant))
    }
}

/// A Docker v2 schema 1 manifest read the way Docker converts it: layers oldest first, "throwaway"
/// (empty) layers left out, and the image config taken from the newest v1Compatibility entry.
struct Schema1Image {
    /// Layer blob digests, base layer first.
    let layers: [Digest]
    private let history: [[String: Any]]
    private let top: [String: Any]

    init(_ m: SchemaV1Manifest) throws {
        let entries = m.history ?? []
        guard entries.count == m.fsLayers.count, !entries.isEmpty else {
            throw RegistryError.badManifest("schema 1 manifest with \(m.fsLayers.count) layers and \(entries.count) history entries")
        }
        var layers = [Digest]()
        var history = [[String: Any]]()
        for (layer, h) in zip(m.fsLayers, entries).reversed() {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(h.v1Compatibility.utf8)) as? [String: Any] else {
                throw RegistryError.badManifest("a schema 1 v1Compatibility entry is not a JSON object")
            }
            let empty = obj["throwaway"] as? Bool ?? false
            if !empty { layers.append(layer.blobSum) }
            var entry: [String: Any] = [:]
            if let created = obj["created"] { entry["created"] = created }
            if let cc = obj["container_config"] as? [String: Any], let cmd = cc["Cmd"] as? [String] {
                entry["created_by"] = cmd.joined(separator: " ")
            }
            if empty { entry["empty_layer"] = true }
            history.append(entry)
        }
        guard let newest = entries.first.flatMap({ try? JSONSerialization.jsonObject(with: Data($0.v1Compatibility.utf8)) as? [String: Any] }) else {
            throw RegistryError.badManifest("the newest schema 1 v1Compatibility entry is not a JSON object")
        }
        self.layers = layers
        self.history = history
        self.top = newest
    }

    /// The image config: the newest v1Compatibility without its v1 bookkeeping, plus rootfs and history.
    func config(diffIDs: [Digest]) throws -> [UInt8] {
        var c = top
        for k in ["id", "parent", "throwaway", "Size", "parent_id", "layer_id"] { c[k] = nil }
        c["rootfs"] = ["type": "layers", "diff_ids": diffIDs.map(\.description)] as [String: Any]
        c["history"] = history
        return Array(try JSONSerialization.data(withJSONObject: c, options: [.sortedKeys]))
    }
}
