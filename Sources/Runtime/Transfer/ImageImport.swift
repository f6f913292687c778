// import FILE|- REPO:TAG: a tar of a directory tree (plain or compressed) becomes a one-layer image
// in the store: the file is the layer blob, with an OCI config and manifest made for it.
import CAS
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

public struct ImportRequest: Sendable {
    /// The tar file, or "-" for standard input.
    public var source: String
    /// REPO/IMAGE[:TAG] of the new image.
    public var image: String
    /// --platform; nil means this host.
    public var platform: Platform?
    /// --mv: remove the source file once the image is recorded (not for standard input).
    public var move: Bool
    /// `max_layer_expansion` (see ImageAssembly); nil: no bound.
    public var maxLayerExpansion: UInt64?

    public init(source: String, image: String, platform: Platform? = nil, move: Bool = false, maxLayerExpansion: UInt64? = nil) {
        self.source = source; self.image = image; self.platform = platform; self.move = move
        self.maxLayerExpansion = maxLayerExpansion
    }
}

public enum ImageImport {
    /// Imports the tar as a new image; an existing image of that name is refused (as in udocker).
    /// Nothing is recorded unless the whole tar was stored and unpacked; with `move`, the source is
    /// removed only after that.
    public static func run(_ request: ImportRequest, images: ImageStore) throws -> LocalImage {
        let name = try ImageName(parsing: request.image)
        if try images.image(name) != nil { throw RuntimeError.imageExists(name.description) }
        let assembly = ImageAssembly(images: images, purpose: "import", maxLayerExpansion: request.maxLayerExpansion)
        defer { assembly.release() }
        let store = images.store

        let blob: BlobRecord
        if request.source == "-" {
            blob = try BlobContent.cas { try store.ingest(fd: 0) }
        } else {
            guard FileIO.exists(request.source) else {
                throw RuntimeError.badArchive(request.source, "tar file does not exist")
            }
            blob = try BlobContent.cas { try store.ingest(fileAt: request.source) }
        }
        try assembly.hold([blob.digest])
        let layer: ImageRecord.Layer
        do { layer = try assembly.layer(blob: blob.digest, docker: false) } catch let e as CASError {
            if case .badLayer(let why) = e {
                throw RuntimeError.archiveRead(request.source == "-" ? "standard input" : request.source, BlobContent.withoutPullHint(why))
            }
            throw e
        }

        let platform = request.platform ?? .host
        let now = ImageRecord.timestamp(Date())
        var config: [String: Any] = [
            "architecture": platform.architecture, "os": platform.os, "created": now, "config": [String: Any](),
            "rootfs": ["type": "layers", "diff_ids": [layer.diffID.description]],
            "history": [["created": now, "created_by": "udocker import",
                         "comment": "imported from " + (request.source == "-" ? "standard input" : FileIO.basename(of: request.source))]],
        ]
        if let v = platform.variant { config["variant"] = v }
        let configBlob = try assembly.ingest(try ImageAssembly.json(object: config), mediaType: MediaType.ociConfig)
        let manifest = try assembly.manifest(config: configBlob, layers: [layer], docker: false)
        let image = try assembly.record(name: name, manifest: manifest, configDigest: configBlob.digest,
                                        layers: [layer], platform: platform)
        if request.move && request.source != "-" && unlink(request.source) != 0 && errno != ENOENT {
            throw RuntimeError.io("remove (--mv)", request.source, errno)
        }
        return image
    }
}
