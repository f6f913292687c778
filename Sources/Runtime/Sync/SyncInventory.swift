// What a sync (or an offline bundle) of some names of a repository needs on the far side: the images,
// and every store object they consist of, once each, in the order they are best sent.
import CAS
import Foundation

public struct SyncInventory: Sendable {
    public var images: [SyncImage] = []
    /// Every object the images (and, once added, the containers) need, each once: configs,
    /// manifests and indexes first (small), then layer blobs by size, smallest first, so a cut-off
    /// sync has finished as many objects as it could.
    public var objects: [SyncObject] = []
    /// The containers of the selection (filled by the containers part of sync, ContainerDelta);
    /// their delta blobs are among `objects`. The sync session carries them and lands them after
    /// the images.
    public var containers: [SyncContainer] = []

    public init() {}

    /// The inventory of `selection` in `repository`. Unknown names are an error listing them; an
    /// image named twice travels once.
    public static func collect(repository: Repository, selection: SyncSelection) throws -> SyncInventory {
        let store = try repository.openStore()
        let images = try ContainerStore.imageStore(repository: repository, store: store)
        var inv = SyncInventory()
        var chosen = [String: LocalImage]()
        if selection.names.isEmpty {
            if selection.images { for i in try images.images() { chosen[i.name.description] = i } }
        } else {
            var unknown = [String]()
            for n in selection.names {
                if selection.images, let i = try? images.image(named: n) { chosen[i.name.description] = i } else { unknown.append(n) }
            }
            if !unknown.isEmpty {
                throw RuntimeError.syncNamesNotFound(unknown, images: try images.images().map(\.name.description))
            }
        }
        for name in chosen.keys.sorted() {
            guard let img = chosen[name] else { continue }
            inv.images.append(SyncImage(name: name, record: img.record))
        }
        inv.objects = try objects(of: inv.images.map(\.record), store: store)
        return inv
    }

    /// The objects of `records`, once each, small metadata first and layers by size.
    static func objects(of records: [ImageRecord], store: Store) throws -> [SyncObject] {
        var seen = Set<Digest>(), meta = [SyncObject](), layers = [SyncObject]()
        for r in records {
            for l in r.layers where seen.insert(l.digest).inserted {
                layers.append(SyncObject(digest: l.digest, size: l.size, mediaType: l.mediaType))
            }
            var small = [(r.configDigest, "application/vnd.oci.image.config.v1+json"), (r.manifestDigest, r.manifestMediaType)]
            if let i = r.indexDigest { small.append((i, "application/vnd.oci.image.index.v1+json")) }
            for (d, type) in small where seen.insert(d).inserted {
                let rec = try BlobContent.cas { try store.blobRecord(d) }
                guard let rec else { throw RuntimeError.layerMissing(d.description) }
                meta.append(SyncObject(digest: d, size: Int64(rec.size), mediaType: rec.mediaType ?? type))
            }
        }
        return meta + layers.sorted { ($0.size, $0.digest.hex) < ($1.size, $1.digest.hex) }
    }
}
