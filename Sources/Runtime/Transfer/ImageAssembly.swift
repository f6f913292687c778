// Turning blobs that are in the store into a recorded image (for import and load): layer blobs in a
// media type registries and Docker accept, synthesized configs and manifests, records and refs, all
// under a pending ref so GC never removes what is being assembled.
import CAS
import Foundation
import Registry

/// Media types Registry does not name.
enum TransferMediaType {
    static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
    static let dockerLayerZstd = "application/vnd.docker.image.rootfs.diff.tar.zstd"
}

/// One image being assembled: reserves what it ingests with a pending ref, released at the end.
final class ImageAssembly {
    let store: Store
    let images: ImageStore
    let holder: String
    private(set) var held: Set<Digest> = []

    /// `max_layer_expansion`: how far a layer may unpack beyond its blob's size (nil: no bound).
    let maxLayerExpansion: UInt64?

    init(images: ImageStore, purpose: String, maxLayerExpansion: UInt64? = nil) {
        self.images = images
        self.store = images.store
        self.maxLayerExpansion = maxLayerExpansion
        holder = Holder.pending(tag: purpose + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
    }

    /// Adds digests to the pending ref (before an ingest of a known digest, right after one of an
    /// unknown digest), so GC keeps them until the image record holds them.
    func hold(_ digests: [Digest]) throws {
        let new = Set(digests).subtracting(held)
        guard !new.isEmpty else { return }
        held.formUnion(new)
        try BlobContent.cas { try store.setRef(holder: holder, digests: Array(held)) }
    }

    /// Drops the pending ref (the records hold what they need by now, or the work failed).
    func release() {
        try? store.removeRef(holder: holder)
    }

    func ingest(_ bytes: [UInt8], mediaType: String?, expected: Digest? = nil) throws -> BlobRecord {
        if let expected { try hold([expected]) }
        let r = try BlobContent.cas { try store.ingest(bytes: bytes, expected: expected, mediaType: mediaType) }
        try hold([r.digest])
        return r
    }

    /// Unpacks a stored layer blob (once) and returns the layer as an image uses it. A layer
    /// compressed with xz or bzip2 (which registries and Docker manifests have no media type for)
    /// is stored once more uncompressed, and that blob is used. `docker` picks Docker media types.
    func layer(blob: Digest, docker: Bool) throws -> ImageRecord.Layer {
        try hold([blob])
        var m: LayerManifest
        do { m = try BlobContent.cas { try store.unpackLayer(blob: blob, maxExpansion: maxLayerExpansion) } } catch CASError.badLayer(let why) {
            guard let x = maxLayerExpansion, why.contains("expands to more than") else { throw CASError.badLayer(why) }
            throw CASError.badLayer(why + "; a layer may unpack to \(x) times its size (max_layer_expansion)")
        }
        try hold([m.diffID])
        var digest = blob
        switch m.compression {
        case "gzip", "zstd", "none":
            break
        default:
            let w = try BlobContent.cas { try store.beginBlob(expected: m.diffID, mediaType: docker ? TransferMediaType.dockerLayerTar : MediaType.ociLayer) }
            try BlobContent.uncompressed(path: store.blobPath(blob)) { chunk in
                try BlobContent.cas { try w.write(chunk) }
            }
            digest = try BlobContent.cas { try w.commit() }.digest
            try hold([digest])
            // Attaches the uncompressed blob to the layer: unpacked once more, found to exist, added to
            // its layer.json (a rare case, so not worth a separate store call).
            m = try BlobContent.cas { try store.unpackLayer(blob: digest, maxExpansion: maxLayerExpansion) }
            m.compression = "none"
        }
        guard let size = try BlobContent.cas({ try store.blobRecord(digest) })?.size else {
            throw CASError.blobMissing(digest)
        }
        let type: String
        switch (m.compression, docker) {
        case ("gzip", true): type = MediaType.dockerLayerGzip
        case ("gzip", false): type = MediaType.ociLayerGzip
        case ("zstd", true): type = TransferMediaType.dockerLayerZstd
        case ("zstd", false): type = MediaType.ociLayerZstd
        case (_, true): type = TransferMediaType.dockerLayerTar
        default: type = MediaType.ociLayer
        }
        return ImageRecord.Layer(digest: digest, mediaType: type, size: Int64(size), diffID: m.diffID)
    }

    /// Stores a manifest for `config` and `layers` (OCI, or Docker v2 schema 2 with `docker`).
    func manifest(config: BlobRecord, layers: [ImageRecord.Layer], docker: Bool) throws -> (digest: Digest, mediaType: String) {
        let type = docker ? MediaType.dockerManifest : MediaType.ociManifest
        let m = ImageManifest(mediaType: type,
                              config: Descriptor(mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig,
                                                 digest: config.digest, size: Int64(config.size)),
                              layers: layers.map { Descriptor(mediaType: $0.mediaType, digest: $0.digest, size: $0.size) })
        let r = try ingest(try Self.json(m), mediaType: type)
        return (r.digest, type)
    }

    /// Records the image under `name` (its ref is set before the record is written).
    @discardableResult
    func record(name: ImageName, manifest: (digest: Digest, mediaType: String), indexDigest: Digest? = nil,
                configDigest: Digest, layers: [ImageRecord.Layer], platform: Platform) throws -> LocalImage {
        let (reference, registry, repository) = Self.origin(name)
        let rec = ImageRecord(reference: reference, registry: registry, repository: repository, tag: name.tag,
                              manifestDigest: manifest.digest, manifestMediaType: manifest.mediaType,
                              indexDigest: indexDigest, configDigest: configDigest, layers: layers,
                              platform: platform, created: ImageRecord.timestamp(Date()))
        return try images.write(rec, as: name)
    }

    /// Where an image that did not come from a registry says it is from: the registry its name
    /// would be pulled from (so a later push or pull of that name means the same image).
    static func origin(_ name: ImageName) -> (reference: String, registry: String, repository: String) {
        if let ref = try? ImageReference.parse(name.description) {
            return (ref.description, ref.registry.baseURL, ref.repository)
        }
        return (name.description, "", name.name)
    }

    static func json<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { return Array(try e.encode(value)) } catch {
            throw RuntimeError.internalFailure("cannot encode JSON: \(error)")
        }
    }

    static func json(object: Any) throws -> [UInt8] {
        do { return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) } catch {
            throw RuntimeError.internalFailure("cannot encode JSON: \(error)")
        }
    }
}
