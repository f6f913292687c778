// Codable manifest types: Docker v2 schema 2, OCI image manifest, Docker manifest list, OCI index,
// Docker v2 schema 1 (legacy, read-only), and the media type constants.
import CAS
import Foundation

public enum MediaType {
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"

    /// The Accept header for manifest requests, most wanted first.
    public static let manifestAccept = [ociIndex, dockerManifestList, ociManifest, dockerManifest,
                                        dockerSchema1Signed, dockerSchema1].joined(separator: ", ")
}

public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
    }

    public var description: String { "\(os)/\(architecture)" + (variant.map { "/" + $0 } ?? "") }
}

public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var urls: [String]?
    public var annotations: [String: String]?
    public var platform: Platform?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }
}

/// Docker v2 schema 2 and OCI image manifest (same shape).
public struct ImageManifest: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String, config: Descriptor, layers: [Descriptor]) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }
}

/// Docker manifest list and OCI image index (same shape).
public struct ImageIndex: Codable, Hashable, Sendable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?
}

/// Docker v2 schema 1: layers listed newest first as fsLayers, config fragments in history.
public struct SchemaV1Manifest: Codable, Hashable, Sendable {
    public struct FSLayer: Codable, Hashable, Sendable { public var blobSum: Digest }
    public struct History: Codable, Hashable, Sendable { public var v1Compatibility: String }
    public var schemaVersion: Int
    public var name: String?
    public var tag: String?
    public var architecture: String?
    public var fsLayers: [FSLayer]
    public var history: [History]?
}

public enum ManifestContent: Sendable, Hashable {
    case image(ImageManifest)
    case index(ImageIndex)
    case schema1(SchemaV1Manifest)
}

/// A manifest as fetched: the raw bytes (what its digest is of), the media type and the parsed form.
public struct FetchedManifest: Sendable {
    public let raw: [UInt8]
    public let mediaType: String
    public let digest: Digest
    public let content: ManifestContent

    /// Parses `raw` according to `mediaType`, falling back to the mediaType/schemaVersion fields inside.
    public static func parse(raw: [UInt8], mediaType headerType: String?, digest: Digest) throws -> FetchedManifest {
        struct Probe: Decodable { let schemaVersion: Int?; let mediaType: String?; let manifests: [AnyDecodable]?; let layers: [AnyDecodable]? }
        struct AnyDecodable: Decodable { init(from decoder: any Decoder) throws {} }
        let data = Data(raw)
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: data) } catch {
            throw RegistryError.badManifest(DecodingProblem.describe(error))
        }
        var type = headerType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if type.isEmpty || type == "application/json" || type == "text/plain" || type == "application/octet-stream" {
            if let t = probe.mediaType { type = t }
            else if probe.schemaVersion == 1 { type = MediaType.dockerSchema1 }
            else if probe.manifests != nil { type = MediaType.ociIndex }
            else if probe.layers != nil { type = MediaType.ociManifest }
        }
        let decoder = JSONDecoder()
        do {
            switch type {
            case MediaType.dockerManifest, MediaType.ociManifest:
                return FetchedManifest(raw: raw, mediaType: type, digest: digest,
                                       content: .image(try decoder.decode(ImageManifest.self, from: data)))
            case MediaType.dockerManifestList, MediaType.ociIndex:
                return FetchedManifest(raw: raw, mediaType: type, digest: digest,
                                       content: .index(try decoder.decode(ImageIndex.self, from: data)))
            case MediaType.dockerSchema1, MediaType.dockerSchema1Signed:
                return FetchedManifest(raw: raw, mediaType: type, digest: digest,
                                       content: .schema1(try decoder.decode(SchemaV1Manifest.self, from: data)))
            default:
                throw RegistryError.unsupportedMediaType(type)
            }
        } catch let e as RegistryError {
            throw e
        } catch {
            throw RegistryError.badManifest("\(type): \(DecodingProblem.describe(error))")
        }
    }
}
