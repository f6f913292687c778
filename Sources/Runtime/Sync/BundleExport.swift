// export --repo: images and containers of a repository as one streamed tar, an OCI image layout
// (skopeo and `load` read its images) with udocker/bundle.json and the container deltas beside it.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct BundleExportRequest: Sendable {
    /// The archive, or "-" for standard output.
    public var output: String
    public var selection: SyncSelection
    /// A have file (`udocker store have`) of the target: objects it lists are left out.
    public var haveFile: String?
    public var progress: (@Sendable (SyncEvent) -> Void)?

    public init(output: String, selection: SyncSelection = SyncSelection(), haveFile: String? = nil,
                progress: (@Sendable (SyncEvent) -> Void)? = nil) {
        self.output = output; self.selection = selection; self.haveFile = haveFile; self.progress = progress
    }
}

public enum BundleExport {
    /// Archive entries' modification time: fixed, so the same content gives the same bundle bytes.
    static let entryTime = ImageSave.epoch

    /// Writes the bundle. The result counts what was written (`objectsSent`) and what the have file
    /// let out (`objectsPresent`). A file output appears under its name only when complete.
    public static func run(_ request: BundleExportRequest, repository: Repository) throws -> SyncResult {
        let have = try request.haveFile.map { Set(try StoreHave.read($0).blobs) } ?? []
        let inventory = try SyncInventory.collect(repository: repository, selection: request.selection)
        let store = try repository.openStore()
        let holder = Holder.pending(tag: "bundle-export-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        try BlobContent.cas {
            try store.setRef(holder: holder, digests: inventory.objects.map(\.digest) + inventory.images.flatMap { $0.record.layers.map(\.diffID) })
        }
        defer { try? store.removeRef(holder: holder) }

        // Manifests, indexes and configs always go (a few KB), so every image in the bundle can be
        // inspected; layers and deltas the target holds are left out.
        let metadata = Set(inventory.images.flatMap { [$0.record.manifestDigest, $0.record.configDigest] + ($0.record.indexDigest.map { [$0] } ?? []) })
        let written = inventory.objects.filter { metadata.contains($0.digest) || !have.contains($0.digest) }
        let omitted = inventory.objects.filter { !metadata.contains($0.digest) && have.contains($0.digest) }.map(\.digest)
        let manifest = BundleManifest(images: inventory.images, containers: inventory.containers, objects: inventory.objects,
                                      omitted: omitted, writtenBy: "\(UdockerVersion.implementationName) \(UdockerVersion.implementation)")

        let out = try ArchiveOutput(path: request.output, refuseExisting: false)
        do {
            let tar = try ArchiveWriter(fd: out.fd, destination: out.name)
            let owner = ArchiveWriter.Owner()
            // Directories as entries of their own: tools that unpack the archive as a user
            // without root (skopeo) fail to make implicit parents owned by root.
            for d in ["blobs", "blobs/sha256", "udocker"] {
                try tar.directory(d, perm: 0o755, owner: owner, mtime: entryTime)
            }
            try tar.file("oci-layout", bytes: Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), mtime: entryTime)
            try tar.file("index.json", bytes: try layoutIndex(inventory.images, objects: inventory.objects), mtime: entryTime)
            try tar.file(BundleManifest.path, bytes: try encode(manifest), mtime: entryTime)
            request.progress?(.plan(objects: written.map { ($0.digest, $0.size) }, present: omitted.count))
            for (i, o) in written.enumerated() {
                try ImageSave.writeBlob(store, o.digest, as: "blobs/sha256/" + o.digest.hex, to: tar, perm: 0o444) {
                    request.progress?(.progress(index: i, bytes: $0))
                }
                request.progress?(.done(index: i))
            }
            try tar.finish()
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
        var report = SyncReport()
        report.images = inventory.images.count
        report.containers = inventory.containers.count
        report.objectsSent = written.count
        report.objectsPresent = omitted.count
        report.objectBytes = written.reduce(0) { $0 + $1.size }
        let left = Set(omitted)
        return SyncResult(report: report,
                          images: inventory.images.map { i in
                              let n = Set(i.record.blobs).intersection(left).count
                              return SyncedItem(name: i.name, objectsSent: Set(i.record.blobs).count - n, objectsPresent: n)
                          },
                          containers: inventory.containers.map { c in
                              let n = left.contains(c.delta.digest) ? 1 : 0
                              return SyncedItem(name: c.names.first ?? c.id, objectsSent: 1 - n, objectsPresent: n)
                          },
                          wouldSend: [], dryRun: false)
    }

    /// index.json of the OCI layout: one manifest descriptor per image, named by its local name, as
    /// `skopeo inspect oci-archive:FILE:NAME` and `udocker load` look images up.
    static func layoutIndex(_ images: [SyncImage], objects: [SyncObject]) throws -> [UInt8] {
        struct Descriptor: Encodable {
            var mediaType: String
            var digest: String
            var size: Int64
            var annotations: [String: String]
        }
        struct Index: Encodable {
            var schemaVersion = 2
            var mediaType = "application/vnd.oci.image.index.v1+json"
            var manifests: [Descriptor]
        }
        let sizes = Dictionary(objects.map { ($0.digest, $0.size) }, uniquingKeysWith: { a, _ in a })
        var manifests = [Descriptor]()
        for i in images {
            guard let size = sizes[i.record.manifestDigest] else { throw RuntimeError.layerMissing(i.record.manifestDigest.description) }
            manifests.append(Descriptor(mediaType: i.record.manifestMediaType, digest: i.record.manifestDigest.description,
                                        size: size, annotations: ["org.opencontainers.image.ref.name": i.name]))
        }
        return try encode(Index(manifests: manifests))
    }

    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try e.encode(value))
    }
}
