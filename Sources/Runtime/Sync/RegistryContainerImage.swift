// A udocker container as an ordinary OCI image for `sync docker://`: its image's layers plus its delta
// layer, the image config with the container's own config, and an annotation carrying the
// SyncContainer, so podman, docker and Apptainer pull it as an image and `sync --from` lands it again.
import CAS
import Foundation
import Registry

public enum RegistryContainerImage {
    /// The config label naming the container's id, so `skopeo inspect` and `podman inspect` show
    /// where the image came from.
    public static let idLabel = "org.udocker.container.id"

    /// Manifest and config of the image of container `container` made from `base`; both are
    /// ingested into `store` (they are small, and the pusher sends blobs from the store). The same
    /// container, unchanged, gives the same bytes, so a second push finds its tag up to date.
    static func make(_ container: SyncContainer, base: ImageRecord, baseReference: String, store: Store)
        throws -> (manifest: Digest, mediaType: String, size: Int64) {
        let deltaDiffID = try diffID(of: container.delta, store: store)
        var config = try jsonObject(try blob(base.configDigest, store: store), what: "the config of image \(container.image)")
        // container.json is the image config as the container has it (udocker 1.3 keeps the whole
        // config there): its run settings win over the image's.
        if let own = try? jsonObject(Array(container.containerJSON), what: "container.json"),
           let settings = own["config"] as? [String: Any] ?? own["container_config"] as? [String: Any] {
            config["config"] = settings
        }
        var settings = config["config"] as? [String: Any] ?? [:]
        var labels = settings["Labels"] as? [String: Any] ?? [:]
        labels[idLabel] = container.id
        settings["Labels"] = labels
        config["config"] = settings
        config["rootfs"] = ["type": "layers", "diff_ids": base.layers.map(\.diffID.description) + [deltaDiffID.description]]
        var history = config["history"] as? [[String: Any]] ?? []
        history.append(["created_by": "udocker container \(container.id): what its ROOT changed against the image",
                        "comment": "udocker sync delta layer"])
        config["history"] = history
        let configBytes = try serialize(config)
        let configRecord = try store.ingest(bytes: configBytes, mediaType: MediaType.ociConfig)

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let travelling = String(decoding: try encoder.encode(container), as: UTF8.self)
        let layers: [[String: Any]] = base.layers.map {
            ["mediaType": ociLayerType($0.mediaType), "digest": $0.digest.description, "size": $0.size]
        } + [["mediaType": ociLayerType(container.delta.mediaType), "digest": container.delta.digest.description,
              "size": container.delta.size]]
        let manifest: [String: Any] = [
            "schemaVersion": 2,
            "mediaType": MediaType.ociManifest,
            "config": ["mediaType": MediaType.ociConfig, "digest": configRecord.digest.description, "size": configRecord.size],
            "layers": layers,
            "annotations": [
                RegistrySync.containerAnnotation: travelling,
                "org.opencontainers.image.base.name": baseReference,
                "org.opencontainers.image.base.digest": base.manifestDigest.description,
            ],
        ]
        let manifestBytes = try serialize(manifest)
        let record = try store.ingest(bytes: manifestBytes, mediaType: MediaType.ociManifest)
        return (record.digest, MediaType.ociManifest, Int64(record.size))
    }

    /// The SyncContainer a container image's annotation carries, checked against the manifest: its
    /// delta is the last layer.
    static func container(from annotation: String, manifest: FetchedManifest, shown: String) throws -> SyncContainer {
        let c: SyncContainer
        do { c = try JSONDecoder().decode(SyncContainer.self, from: Data(annotation.utf8)) } catch {
            throw RuntimeError.syncRegistryBadContainer(shown, reason: "its \(RegistrySync.containerAnnotation) annotation is not readable (\(error))")
        }
        guard case .image(let m) = manifest.content, let last = m.layers.last, last.digest == c.delta.digest,
              last.size == c.delta.size else {
            throw RuntimeError.syncRegistryBadContainer(shown, reason: "its last layer is not the delta its annotation names")
        }
        return c
    }

    /// The diff_id of a delta blob: its digest when it is a plain tar, else the hash of its
    /// uncompressed bytes.
    static func diffID(of delta: SyncObject, store: Store) throws -> Digest {
        if delta.mediaType == MediaType.ociLayer || delta.mediaType == "application/vnd.docker.image.rootfs.diff.tar" {
            return delta.digest
        }
        guard store.hasBlob(delta.digest) else { throw RuntimeError.layerMissing(delta.digest.description) }
        return try BlobContent.uncompressed(path: store.blobPath(delta.digest)) { _ in }.digest
    }

    /// Docker's layer types as their OCI twins (same bytes): an OCI manifest may carry annotations.
    static func ociLayerType(_ type: String) -> String {
        switch type {
        case MediaType.dockerLayerGzip: return MediaType.ociLayerGzip
        case "application/vnd.docker.image.rootfs.diff.tar": return MediaType.ociLayer
        case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        default: return type
        }
    }

    static func blob(_ digest: Digest, store: Store) throws -> [UInt8] {
        guard store.hasBlob(digest) else { throw RuntimeError.layerMissing(digest.description) }
        return try BlobContent.cas { try FileIO.readFile(store.blobPath(digest)) }
    }

    static func jsonObject(_ bytes: [UInt8], what: String) throws -> [String: Any] {
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw RuntimeError.badMetadata(path: what, reason: "not a JSON object")
        }
        return o
    }

    static func serialize(_ object: [String: Any]) throws -> [UInt8] {
        do { return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) } catch {
            throw RuntimeError.badMetadata(path: "container image", reason: "cannot encode: \(error)")
        }
    }
}

/// Streams a downloaded blob (a container's delta) into a store BlobWriter, which hashes it and
/// checks the digest on commit.
final class DeltaBlobSink: VerifyingBlobSink {
    let writer: BlobWriter
    init(_ writer: BlobWriter) { self.writer = writer }
    var offset: UInt64 { writer.bytesWritten }
    func write(_ chunk: UnsafeRawBufferPointer) throws { try writer.write(chunk) }
    func restart() throws { try writer.restart() }
}
