// load: images from a `docker save` archive (legacy manifest.json + <id>/layer.tar, and Docker 25+'s
// OCI layout with nested indexes and symlinked layers) or an OCI image layout tar, into the store.
import CAS
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

public struct LoadRequest: Sendable {
    /// The archive, or "-" for standard input.
    public var source: String
    /// REPO/IMAGE to name the images by (udocker's optional argument): replaces the names in the
    /// archive, keeping their tags.
    public var repository: String?
    /// The platform to choose from a multi-platform index; nil means this host.
    public var platform: Platform?
    /// `max_layer_expansion` (see ImageAssembly); nil: no bound.
    public var maxLayerExpansion: UInt64?

    public init(source: String, repository: String? = nil, platform: Platform? = nil, maxLayerExpansion: UInt64? = nil) {
        self.source = source; self.repository = repository; self.platform = platform
        self.maxLayerExpansion = maxLayerExpansion
    }
}

public struct LoadReport: Sendable {
    public var images: [LocalImage] = []
    /// Images of the archive not loaded because their name exists (udocker's rule: a name that
    /// exists is never replaced).
    public var skipped: [ImageName] = []
    /// Entries left out, and other things the user may want to know.
    public var notes: [String] = []
}

public enum ImageLoad {
    /// Loads every image of the archive whose name does not exist yet; as in udocker 1.3.17 the
    /// others are skipped (in `skipped`), and when that leaves nothing to load the load fails. Each
    /// blob is checked against its digest, each layer's content against the config's diff_ids, and
    /// nothing is recorded unless every image of the archive is complete. Archive entries are never written to disk by their names: blobs go to
    /// the store by digest, and links are followed only inside the archive.
    public static func run(_ request: LoadRequest, images: ImageStore) throws -> LoadReport {
        let sourceName = request.source == "-" ? "standard input" : request.source
        if let r = request.repository {
            let n = try ImageName(parsing: r)
            guard n.tag == "latest" || r.hasSuffix(":latest") else {
                throw RuntimeError.invalidImageName(r, "give a repository name without a tag; the tags come from the archive")
            }
        }
        let assembly = ImageAssembly(images: images, purpose: "load", maxLayerExpansion: request.maxLayerExpansion)
        defer { assembly.release() }
        let scan = ArchiveScan(sourceName: sourceName, assembly: assembly)
        if request.source == "-" {
            try scan.read(fd: 0)
        } else {
            let fd = Glibc.open(request.source, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.badArchive(request.source, "cannot open it: \(String(cString: strerror(errno)))") }
            defer { _ = close(fd) }
            try scan.read(fd: fd)
        }
        let loader = Loader(scan: scan, assembly: assembly, request: request, fallbackName: fallbackName(request))
        let found = try loader.images()
        guard !found.isEmpty else { throw RuntimeError.badArchive(sourceName, "the archive holds no image") }

        var report = LoadReport(notes: scan.notes + loader.notes)
        var fresh = [FoundImage]()
        for f in found where !fresh.contains(where: { $0.name == f.name }) {
            if try exists(f.name, in: images) { report.skipped.append(f.name) } else { fresh.append(f) }
        }
        if fresh.isEmpty { throw RuntimeError.imagesExist(report.skipped.map(\.description)) }
        for f in fresh {
            report.images.append(try assembly.record(name: f.name, manifest: f.manifest, indexDigest: f.index,
                                                     configDigest: f.config, layers: f.layers, platform: f.platform))
        }
        return report
    }

    /// Whether `name` names an image of the repository (also one whose record is damaged).
    static func exists(_ name: ImageName, in images: ImageStore) throws -> Bool {
        do { return try images.image(name) != nil } catch RuntimeError.badImageRecord { return true }
    }

    /// The name for images the archive does not name: the archive's file name ("busybox.tar" ->
    /// "busybox"), made a valid image name; "loaded" for standard input.
    static func fallbackName(_ request: LoadRequest) -> String {
        if let r = request.repository { return (try? ImageName(parsing: r).name) ?? r }
        guard request.source != "-" else { return "loaded" }
        var base = FileIO.basename(of: request.source).lowercased()
        while let dot = base.lastIndex(of: "."), base[dot...].count <= 5 { base = String(base[..<dot]) }
        let cleaned = String(base.map { ($0.isLetter && $0.isASCII) || $0.isNumber ? $0 : "-" })
            .split(separator: "-").joined(separator: "-")
        return cleaned.isEmpty ? "loaded" : cleaned
    }
}

/// One image found in the archive, ready to record.
struct FoundImage {
    var name: ImageName
    var manifest: (digest: Digest, mediaType: String)
    var index: Digest?
    var config: Digest
    var layers: [ImageRecord.Layer]
    var platform: Platform
}

/// Interprets a scanned archive.
final class Loader {
    let scan: ArchiveScan
    let assembly: ImageAssembly
    let request: LoadRequest
    let fallbackName: String
    private(set) var notes: [String] = []

    init(scan: ArchiveScan, assembly: ImageAssembly, request: LoadRequest, fallbackName: String) {
        self.scan = scan; self.assembly = assembly; self.request = request; self.fallbackName = fallbackName
    }

    private func bad(_ why: String) -> RuntimeError { RuntimeError.badArchive(scan.sourceName, why) }

    func images() throws -> [FoundImage] {
        let legacy = try scan.bytes("manifest.json")
        if let indexBytes = try scan.bytes("index.json") {
            let tags = try legacy.map { try repoTagsByConfig($0) } ?? [:]
            return try ociImages(indexBytes, repoTags: tags)
        }
        if let legacy { return try dockerImages(legacy) }
        if try scan.bytes("repositories") != nil {
            throw bad("this is a 'docker save' archive of Docker before 1.10 (no manifest.json), which is not supported; save the image with a newer Docker")
        }
        throw bad("not an image archive: it has neither manifest.json ('docker save') nor index.json (OCI image layout)")
    }

    // MARK: names

    /// The name an image gets from a reference in the archive (a full name or only a tag).
    private func name(fromReference ref: String?, digest: Digest) throws -> ImageName {
        let fallbackTag = String(digest.hex.prefix(12))
        guard let ref, !ref.isEmpty else { return ImageName(name: fallbackName, tag: fallbackTag) }
        let looksFull = ref.contains("/") || ref.contains(":") || ref.contains("@")
        if looksFull, let n = try? ImageName(parsing: ref) {
            if let r = request.repository { return ImageName(name: try ImageName(parsing: r).name, tag: n.tag) }
            return n
        }
        // A tag only (OCI layouts made by skopeo, buildah, or Docker's ref.name annotation).
        if let n = try? ImageName(parsing: fallbackName + ":" + ref) { return n }
        notes.append("the archive's name '\(ref)' is not a valid tag; the image is named by its digest")
        return ImageName(name: fallbackName, tag: fallbackTag)
    }

    // MARK: docker save (legacy)

    private struct DockerManifestEntry: Decodable {
        let Config: String
        let RepoTags: [String]?
        let Layers: [String]
    }

    private func parseDockerManifest(_ bytes: [UInt8]) throws -> [DockerManifestEntry] {
        do { return try JSONDecoder().decode([DockerManifestEntry].self, from: Data(bytes)) } catch {
            throw bad("manifest.json is not a 'docker save' manifest: \(error)")
        }
    }

    /// Config digest -> RepoTags of manifest.json (Docker 25+ writes both it and index.json).
    private func repoTagsByConfig(_ bytes: [UInt8]) throws -> [Digest: [String]] {
        guard let entries = try? parseDockerManifest(bytes) else { return [:] }
        var out = [Digest: [String]]()
        for e in entries {
            guard let b = try scan.bytes(e.Config) else { continue }
            out[try sha256(b), default: []] += e.RepoTags ?? []
        }
        return out
    }

    private func dockerImages(_ bytes: [UInt8]) throws -> [FoundImage] {
        var out = [FoundImage]()
        for e in try parseDockerManifest(bytes) {
            guard let configBytes = try scan.bytes(e.Config) else { throw bad("manifest.json names the config \(e.Config), which is not in the archive") }
            let digest = try sha256(configBytes)
            // "<hex>.json" (Docker before 25) and "blobs/sha256/<hex>" name the content's digest: check it.
            let base = FileIO.basename(of: e.Config)
            let named = ArchiveScan.blobDigest(ArchiveScan.normalize(e.Config) ?? "")
                ?? (base.hasSuffix(".json") ? try? Digest(parsing: "sha256:" + String(base.dropLast(5))) : nil)
            if let named, named != digest {
                throw bad("the config \(e.Config) does not match its digest (content is \(digest)); the archive is corrupt or was tampered with")
            }
            let summary = try parseConfig(configBytes, e.Config)
            let config = try assembly.ingest(configBytes, mediaType: MediaType.dockerConfig, expected: digest)
            guard summary.diffIDs.count == e.Layers.count else {
                throw bad("the config \(e.Config) lists \(summary.diffIDs.count) layers, manifest.json \(e.Layers.count)")
            }
            var layers = [ImageRecord.Layer]()
            for (path, diffID) in zip(e.Layers, summary.diffIDs) {
                guard let blob = try scan.blob(path) else { throw bad("manifest.json names the layer \(path), which is not in the archive") }
                let layer = try unpack(blob, path, docker: true)
                guard layer.diffID == diffID else {
                    throw bad("layer \(path) has the content \(layer.diffID), but the config says \(diffID); the archive is corrupt or was tampered with")
                }
                layers.append(layer)
            }
            let manifest = try assembly.manifest(config: config, layers: layers, docker: true)
            let names = (e.RepoTags ?? []).isEmpty ? [nil] : (e.RepoTags ?? []).map { Optional($0) }
            for n in names {
                out.append(FoundImage(name: try name(fromReference: n, digest: digest), manifest: manifest, index: nil,
                                      config: digest, layers: layers, platform: summary.platform))
            }
        }
        return out
    }

    // MARK: OCI layout (also Docker 25+ 'docker save')

    private func ociImages(_ indexBytes: [UInt8], repoTags: [Digest: [String]]) throws -> [FoundImage] {
        let index = try parseIndex(indexBytes, "index.json")
        var out = [FoundImage]()
        for d in index.manifests {
            let ann = d.annotations ?? [:]
            guard var image = try resolve(d, depth: 0) else { continue }
            var refs = [String]()
            if let n = ann["io.containerd.image.name"] { refs.append(n) }
            else if let n = ann["org.opencontainers.image.ref.name"] { refs.append(n) }
            else { refs = repoTags[image.config] ?? [] }
            if refs.isEmpty { refs = [""] }
            for r in refs {
                image.name = try name(fromReference: r.isEmpty ? nil : r, digest: image.manifest.digest)
                out.append(image)
            }
        }
        return out
    }

    /// The image a descriptor leads to (an index picks this host's or the requested platform), or
    /// nil for an entry that is not an image (attestations, other artifacts).
    private func resolve(_ d: Descriptor, depth: Int, index: Digest? = nil) throws -> FoundImage? {
        guard depth < 8 else { throw bad("indexes nested more than 8 deep") }
        guard let bytes = try verifiedBlob(d.digest, what: "manifest") else {
            throw bad("index.json names \(d.digest), which is not in the archive")
        }
        let parsed: FetchedManifest
        do { parsed = try FetchedManifest.parse(raw: bytes, mediaType: d.mediaType, digest: d.digest) } catch {
            notes.append("skipped \(d.digest): not an image manifest (\(error))")
            return nil
        }
        switch parsed.content {
        case .index(let idx):
            // Only entries whose manifests are in the archive (docker save keeps one platform).
            var present = idx.manifests.filter { scan.items["blobs/sha256/" + $0.digest.hex] != nil }
            present = present.filter { $0.platform?.os != "unknown" }
            guard !present.isEmpty else { throw bad("the index \(d.digest) names no manifest that is in the archive") }
            let chosen: Descriptor
            let wanted = request.platform ?? .host
            var candidates = idx
            candidates.manifests = present
            if let c = try? candidates.select(wanted) {
                chosen = c
            } else if present.count == 1, request.platform == nil {
                chosen = present[0]
            } else {
                let have = present.compactMap { $0.platform?.description }.joined(separator: ", ")
                throw bad("no image for \(wanted) in the index \(d.digest) (the archive has: \(have.isEmpty ? "no platform listed" : have))")
            }
            return try resolve(chosen, depth: depth + 1, index: d.digest)
        case .image(let m):
            return try image(m, digest: d.digest, mediaType: parsed.mediaType, index: index)
        case .schema1:
            notes.append("skipped \(d.digest): a Docker schema 1 manifest, which an image layout should not hold")
            return nil
        }
    }

    private func image(_ m: ImageManifest, digest: Digest, mediaType: String, index: Digest?) throws -> FoundImage? {
        guard m.config.mediaType == MediaType.ociConfig || m.config.mediaType == MediaType.dockerConfig else {
            notes.append("skipped \(digest): not a container image (config type \(m.config.mediaType))")
            return nil
        }
        guard let configBytes = try verifiedBlob(m.config.digest, what: "config") else {
            throw bad("the config \(m.config.digest) of manifest \(digest) is not in the archive")
        }
        let summary = try parseConfig(configBytes, m.config.digest.description)
        guard summary.diffIDs.count == m.layers.count else {
            throw bad("manifest \(digest) has \(m.layers.count) layers, its config \(summary.diffIDs.count) diff_ids")
        }
        var layers = [ImageRecord.Layer]()
        for (l, diffID) in zip(m.layers, summary.diffIDs) {
            guard let blob = try scan.blob("blobs/sha256/" + l.digest.hex) else {
                throw bad("layer \(l.digest) of manifest \(digest) is not in the archive")
            }
            // A blob reached through a symlink was hashed under its target's name: check this name too.
            guard blob == l.digest else {
                throw bad("blobs/sha256/\(l.digest.hex) leads to content \(blob); the archive is corrupt or was tampered with")
            }
            var layer = try unpack(blob, "blobs/sha256/" + l.digest.hex, docker: false)
            guard layer.diffID == diffID else {
                throw bad("layer \(l.digest) has the content \(layer.diffID), but the config says \(diffID); the archive is corrupt or was tampered with")
            }
            if layer.digest == l.digest { layer.mediaType = l.mediaType }
            layers.append(layer)
        }
        for d in [digest, m.config.digest] + (index.map { [$0] } ?? []) { try store(d) }
        return FoundImage(name: ImageName(name: fallbackName, tag: "latest"), manifest: (digest, mediaType),
                          index: index, config: m.config.digest, layers: layers, platform: summary.platform)
    }

    // MARK: helpers

    /// A blob of the OCI layout, read from the store after checking that what the archive holds
    /// under blobs/sha256/<hex> (possibly through a link) is that digest.
    private func verifiedBlob(_ d: Digest, what: String) throws -> [UInt8]? {
        guard let bytes = try scan.bytes("blobs/sha256/" + d.hex) else { return nil }
        let actual = try sha256(bytes)
        guard actual == d else { throw bad("the \(what) blobs/sha256/\(d.hex) has the content \(actual); the archive is corrupt or was tampered with") }
        return bytes
    }

    private func unpack(_ blob: Digest, _ path: String, docker: Bool) throws -> ImageRecord.Layer {
        do { return try assembly.layer(blob: blob, docker: docker) } catch let e as CASError {
            if case .badLayer(let why) = e { throw bad("layer \(path): \(BlobContent.withoutPullHint(why))") }
            throw e
        }
    }

    private func parseConfig(_ bytes: [UInt8], _ what: String) throws -> ImageConfigSummary {
        do { return try ImageConfigSummary.parse(bytes) } catch { throw bad("config \(what): \(error)") }
    }

    private func parseIndex(_ bytes: [UInt8], _ what: String) throws -> ImageIndex {
        do { return try JSONDecoder().decode(ImageIndex.self, from: Data(bytes)) } catch {
            throw bad("\(what) is not an OCI image index: \(error)")
        }
    }

    private func sha256(_ bytes: [UInt8]) throws -> Digest {
        let h = try BlobContent.cas { try SHA256Hasher() }
        h.update(bytes)
        return h.finish()
    }

    /// Makes sure the blob blobs/sha256/<hex> is in the store with that digest (a file reached
    /// through a link may have been small enough to be kept in memory).
    private func store(_ d: Digest) throws {
        guard let stored = try scan.blob("blobs/sha256/" + d.hex), stored == d else {
            throw bad("blobs/sha256/\(d.hex) is missing or does not match its digest")
        }
    }
}
