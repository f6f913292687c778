// save: images of the repository as one tar, either the `docker save` format (manifest.json,
// repositories, <config>.json, <layer>/layer.tar uncompressed) or an OCI image layout.
import CAS
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

public struct SaveRequest: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `docker save`'s format: what `docker load` and `skopeo ... docker-archive:` read.
        case docker
        /// An OCI image layout (oci-layout, index.json, blobs/sha256/): `skopeo ... oci-archive:`.
        case oci
    }

    /// The output file ("-" is standard output). An existing file is refused.
    public var output: String
    public var images: [String]
    public var format: Format

    public init(output: String, images: [String], format: Format = .docker) {
        self.output = output; self.images = images; self.format = format
    }
}

public enum ImageSave {
    /// Writes the images to one archive. Every layer written is checked against its diff_id (docker
    /// format) or is the stored blob (OCI format); on any failure no output file is left.
    @discardableResult
    public static func run(_ request: SaveRequest, images: ImageStore) throws -> [LocalImage] {
        guard !request.images.isEmpty else { throw RuntimeError.invalidImageName("", "name at least one image to save") }
        var list = [LocalImage]()
        for text in request.images {
            let img = try images.require(text)
            if !list.contains(where: { $0.name == img.name }) { list.append(img) }
        }
        let out = try ArchiveOutput(path: request.output, refuseExisting: true)
        do {
            let w = try ArchiveWriter(fd: out.fd, destination: out.name)
            switch request.format {
            case .docker: try DockerArchiveWriter(store: images.store, writer: w).write(list)
            case .oci: try OCIArchiveWriter(store: images.store, writer: w).write(list)
            }
            try w.finish()
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
        for img in list { for d in img.record.digests { images.store.markUsed(d) } }
        return list
    }

    static let epoch = timespec(tv_sec: 0, tv_nsec: 0)

    /// Writes a stored blob as an archive entry (mode `perm`); `progress` gets the bytes written so far.
    static func writeBlob(_ store: Store, _ d: Digest, as path: String, to w: ArchiveWriter, perm: mode_t = 0o644,
                          progress: ((Int64) -> Void)? = nil) throws {
        let p = store.blobPath(d)
        let fd = Glibc.open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { throw CASError.blobMissing(d) }
            throw RuntimeError.io("open", p, errno)
        }
        defer { _ = close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw RuntimeError.io("stat", p, errno) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        try w.file(path, perm: perm, owner: ArchiveWriter.Owner(), mtime: epoch, size: Int64(st.st_size), fd: fd, source: p, progress: progress)
    }

    static func readBlob(_ store: Store, _ d: Digest) throws -> [UInt8] {
        guard store.hasBlob(d) else { throw CASError.blobMissing(d) }
        return try BlobContent.cas { try FileIO.readFile(store.blobPath(d)) }
    }
}

/// The `docker save` format. Layer directories are named by the layer's chain ID (as Docker 1.10+
/// names them), so a layer shared by several images is written once.
struct DockerArchiveWriter {
    let store: Store
    let writer: ArchiveWriter

    func write(_ images: [LocalImage]) throws {
        var entries = [[String: Any]]()
        var entryIndex = [Digest: Int]()
        var repositories = [String: [String: String]]()
        var writtenLayers = Set<String>()
        var writtenConfigs = Set<Digest>()
        for img in images {
            let rec = img.record
            var chain: Digest? = nil
            var layerPaths = [String]()
            for l in rec.layers {
                let id = try chainID(chain, l.diffID)
                if !writtenLayers.contains(id.hex) {
                    try writeLayer(l, dir: id.hex, parent: chain?.hex)
                    writtenLayers.insert(id.hex)
                }
                layerPaths.append(id.hex + "/layer.tar")
                chain = id
            }
            if !writtenConfigs.contains(rec.configDigest) {
                try ImageSave.writeBlob(store, rec.configDigest, as: rec.configDigest.hex + ".json", to: writer)
                writtenConfigs.insert(rec.configDigest)
            }
            let tag = img.name.tag.hasPrefix("@") ? nil : img.name.description
            if let i = entryIndex[rec.configDigest] {
                if let tag { entries[i]["RepoTags"] = ((entries[i]["RepoTags"] as? [String]) ?? []) + [tag] }
            } else {
                entryIndex[rec.configDigest] = entries.count
                entries.append(["Config": rec.configDigest.hex + ".json", "RepoTags": tag.map { [$0] } ?? [String](),
                                "Layers": layerPaths])
            }
            if tag != nil, let top = chain { repositories[img.name.name, default: [:]][img.name.tag] = top.hex }
        }
        try writer.file("manifest.json", bytes: try ImageAssembly.json(object: entries), mtime: ImageSave.epoch)
        try writer.file("repositories", bytes: try ImageAssembly.json(object: repositories), mtime: ImageSave.epoch)
    }

    /// Docker's ChainID: the diff_id for the base layer, then sha256("<parent chain> <diff_id>").
    private func chainID(_ parent: Digest?, _ diffID: Digest) throws -> Digest {
        guard let parent else { return diffID }
        let h = try BlobContent.cas { try SHA256Hasher() }
        h.update(Array("\(parent) \(diffID)".utf8))
        return h.finish()
    }

    /// <dir>/VERSION, <dir>/json and <dir>/layer.tar: the layer uncompressed. A compressed blob is
    /// read twice (once to learn the size a tar header needs, checking the diff_id, once to write),
    /// which costs CPU but no disk.
    private func writeLayer(_ l: ImageRecord.Layer, dir: String, parent: String?) throws {
        let e = ImageSave.epoch
        try writer.directory(dir, perm: 0o755, owner: ArchiveWriter.Owner(), mtime: e)
        try writer.file(dir + "/VERSION", bytes: Array("1.0".utf8), mtime: e)
        var json: [String: Any] = ["id": dir, "created": "1970-01-01T00:00:00Z"]
        if let parent { json["parent"] = parent }
        try writer.file(dir + "/json", bytes: try ImageAssembly.json(object: json), mtime: e)
        if l.digest == l.diffID {
            try ImageSave.writeBlob(store, l.digest, as: dir + "/layer.tar", to: writer)
            return
        }
        let path = store.blobPath(l.digest)
        guard store.hasBlob(l.digest) else { throw CASError.blobMissing(l.digest) }
        let first = try BlobContent.uncompressed(path: path) { _ in }
        guard first.digest == l.diffID else {
            throw RuntimeError.badArchive(path, "layer blob \(l.digest) unpacks to \(first.digest), not its diff_id \(l.diffID): run 'udocker verify' and pull the image again")
        }
        var again: Digest? = nil
        try writer.file(dir + "/layer.tar", perm: 0o644, mtime: e, size: Int64(first.size)) { sink in
            again = try BlobContent.uncompressed(path: path, sink: sink).digest
        }
        guard again == l.diffID else {
            throw RuntimeError.badArchive(path, "layer blob \(l.digest) changed while it was saved")
        }
    }
}

/// An OCI image layout: blobs as stored, index.json naming each image with Docker's and
/// containerd's annotations (org.opencontainers.image.ref.name is the tag, io.containerd.image.name
/// the full name), as Docker 25+ writes them.
struct OCIArchiveWriter {
    let store: Store
    let writer: ArchiveWriter

    /// The OCI media type of a layer (Docker's name the same formats differently).
    static func ociLayerType(_ t: String) -> String {
        switch t {
        case MediaType.dockerLayerGzip: return MediaType.ociLayerGzip
        case TransferMediaType.dockerLayerTar: return MediaType.ociLayer
        case TransferMediaType.dockerLayerZstd: return MediaType.ociLayerZstd
        default: return t
        }
    }

    func write(_ images: [LocalImage]) throws {
        let e = ImageSave.epoch
        try writer.file("oci-layout", bytes: Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), mtime: e)
        var manifests = [[String: Any]]()
        var written = Set<Digest>()
        var pending = [(Digest, [UInt8]?)]()   // blobs to write after index.json; bytes when not stored
        for img in images {
            let rec = img.record
            var manifestDigest = rec.manifestDigest
            var manifestType = rec.manifestMediaType
            var manifestSize: Int64
            if manifestType == MediaType.ociManifest {
                manifestSize = Int64(try BlobContent.cas { try store.blobRecord(rec.manifestDigest) }?.size ?? 0)
                guard manifestSize > 0 else { throw CASError.blobMissing(rec.manifestDigest) }
                pending.append((manifestDigest, nil))
            } else {
                // A layout holds OCI manifests (skopeo and containerd skip others): a Docker v2 or
                // schema 1 image gets an OCI manifest of the same config and layer blobs.
                guard let configSize = try BlobContent.cas({ try store.blobRecord(rec.configDigest) })?.size else {
                    throw CASError.blobMissing(rec.configDigest)
                }
                let m = ImageManifest(mediaType: MediaType.ociManifest,
                                      config: Descriptor(mediaType: MediaType.ociConfig, digest: rec.configDigest, size: Int64(configSize)),
                                      layers: rec.layers.map { Descriptor(mediaType: Self.ociLayerType($0.mediaType), digest: $0.digest, size: $0.size) })
                let bytes = try ImageAssembly.json(m)
                let h = try BlobContent.cas { try SHA256Hasher() }
                h.update(bytes)
                manifestDigest = h.finish()
                manifestType = MediaType.ociManifest
                manifestSize = Int64(bytes.count)
                pending.append((manifestDigest, bytes))
            }
            pending.append((rec.configDigest, nil))
            for l in rec.layers { pending.append((l.digest, nil)) }
            var desc: [String: Any] = ["mediaType": manifestType, "digest": manifestDigest.description, "size": manifestSize]
            var platform: [String: Any] = ["os": rec.platform.os, "architecture": rec.platform.architecture]
            if let v = rec.platform.variant { platform["variant"] = v }
            desc["platform"] = platform
            if !img.name.tag.hasPrefix("@") {
                desc["annotations"] = ["io.containerd.image.name": img.name.description,
                                       "org.opencontainers.image.ref.name": img.name.tag]
            }
            manifests.append(desc)
        }
        let index: [String: Any] = ["schemaVersion": 2, "mediaType": MediaType.ociIndex, "manifests": manifests]
        try writer.file("index.json", bytes: try ImageAssembly.json(object: index), mtime: e)
        try writer.directory("blobs", perm: 0o755, owner: ArchiveWriter.Owner(), mtime: e)
        try writer.directory("blobs/sha256", perm: 0o755, owner: ArchiveWriter.Owner(), mtime: e)
        for (d, bytes) in pending where !written.contains(d) {
            written.insert(d)
            if let bytes {
                try writer.file("blobs/sha256/" + d.hex, bytes: bytes, mtime: e)
            } else {
                try ImageSave.writeBlob(store, d, as: "blobs/sha256/" + d.hex, to: writer)
            }
        }
    }
}
