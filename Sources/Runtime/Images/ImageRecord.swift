// The record of one local image (REPO/repos/<name>/<tag>/image.json): where it came from and every
// store object it consists of. Later commands (create, push, verify) read it.
import CAS
import Foundation
import Registry

public struct ImageRecord: Codable, Sendable, Equatable {
    public struct Layer: Codable, Sendable, Equatable {
        /// The layer blob (compressed, as in the manifest).
        public var digest: Digest
        public var mediaType: String
        public var size: Int64
        /// The unpacked layer in the store (layers/sha256/<diffID>).
        public var diffID: Digest

        public init(digest: Digest, mediaType: String, size: Int64, diffID: Digest) {
            self.digest = digest; self.mediaType = mediaType; self.size = size; self.diffID = diffID
        }
    }

    public static let formatVersion = 1

    public var format: Int
    /// The reference pulled, canonical (e.g. "docker.io/library/busybox:latest").
    public var reference: String
    /// The registry's base URL (e.g. "https://registry-1.docker.io").
    public var registry: String
    /// The repository in that registry (e.g. "library/busybox").
    public var repository: String
    /// The local tag ("latest", or "@sha256:…" for an image pulled by digest only).
    public var tag: String
    public var manifestDigest: Digest
    public var manifestMediaType: String
    public var indexDigest: Digest?
    public var configDigest: Digest
    /// Base layer first.
    public var layers: [Layer]
    public var platform: Platform
    /// When this record was written (ISO 8601, UTC).
    public var created: String

    public init(format: Int = ImageRecord.formatVersion, reference: String, registry: String, repository: String, tag: String,
                manifestDigest: Digest, manifestMediaType: String, indexDigest: Digest?, configDigest: Digest,
                layers: [Layer], platform: Platform, created: String) {
        self.format = format; self.reference = reference; self.registry = registry; self.repository = repository
        self.tag = tag; self.manifestDigest = manifestDigest; self.manifestMediaType = manifestMediaType
        self.indexDigest = indexDigest; self.configDigest = configDigest; self.layers = layers
        self.platform = platform; self.created = created
    }

    /// The record of a pulled image under the local name `name`.
    public init(pulled p: PulledImage, name: ImageName, now: Date = Date()) {
        self.init(reference: p.reference.description, registry: p.reference.registry.baseURL,
                  repository: p.reference.repository, tag: name.tag, manifestDigest: p.manifestDigest,
                  manifestMediaType: p.manifestMediaType, indexDigest: p.indexDigest, configDigest: p.configDigest,
                  layers: p.layers.map { Layer(digest: $0.digest, mediaType: $0.mediaType, size: $0.size, diffID: $0.diffID) },
                  platform: p.platform, created: ImageRecord.timestamp(now))
    }

    /// Blobs of the image: manifest, index (if any), config, layer blobs.
    public var blobs: [Digest] {
        [manifestDigest] + (indexDigest.map { [$0] } ?? []) + [configDigest] + layers.map(\.digest)
    }

    /// Every store object the image holds: its blobs and the unpacked layers' diff_ids.
    public var digests: [Digest] { Array(Set(blobs + layers.map(\.diffID))).sorted() }

    static func timestamp(_ d: Date) -> String {
        Timestamp.utc(d)
    }
}
