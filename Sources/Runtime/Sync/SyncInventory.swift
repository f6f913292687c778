// What a sync (or an offline bundle) of some names of a repository needs on the far side: the images,
// and every store object they consist of, once each, in the order they are best sent.
import CAS
import Foundation
import Synchronization

public struct SyncInventory: Sendable {
    public var images: [SyncImage] = []
    /// Every object the images and containers need, each once: configs, manifests and indexes
    /// first (small), then the containers' deltas and their images' layers, then the other layers,
    /// each part by size, smallest first, so a cut-off sync has finished as many objects as it
    /// could and containers can land while the rest streams.
    public var objects: [SyncObject] = []
    /// The containers of the selection (filled by the containers part of sync, ContainerDelta);
    /// their delta blobs are among `objects`. The sync session carries them and lands them after
    /// the images.
    public var containers: [SyncContainer] = []
    /// What was left out of an everything-sync, one sentence each (containers without their image).
    public var notes: [String] = []

    public init() {}

    /// The inventory of `selection` in `repository`. Unknown names are an error listing them; an
    /// image named twice travels once.
    public static func collect(repository: Repository, selection: SyncSelection) throws -> SyncInventory {
        let store = try repository.openStore()
        let images = try ContainerStore.imageStore(repository: repository, store: store)
        let containers = ContainerStore(images: images)
        var inv = SyncInventory()
        var chosen = [String: LocalImage]()
        var containerIDs = [String]()
        if selection.names.isEmpty {
            if selection.images { for i in try images.images() { chosen[i.name.description] = i } }
            if selection.containers {
                // Every container that can travel as image + delta (an imported rootfs has no image).
                for c in try containers.containers() {
                    if (try? images.image(named: c.image)) ?? nil != nil { containerIDs.append(c.id) } else {
                        inv.notes.append("container \(c.names.first ?? c.id) not sent: its image \(c.image) is not in this repository")
                    }
                }
            }
        } else {
            var unknown = [String]()
            for n in selection.names {
                if selection.images, let i = try? images.image(named: n) { chosen[i.name.description] = i }
                else if selection.containers, let id = containers.resolve(n) { if !containerIDs.contains(id) { containerIDs.append(id) } }
                else { unknown.append(n) }
            }
            if !unknown.isEmpty {
                throw RuntimeError.syncNamesNotFound(unknown, images: try images.images().map(\.name.description))
            }
        }
        // A container travels with its image (by the name imagerepo.name gives) and its delta.
        for c in try prepareDeltas(repository: repository, ids: containerIDs) {
            inv.containers.append(c)
            if chosen[c.image] == nil, let i = try images.image(named: c.image) { chosen[i.name.description] = i }
        }
        for name in chosen.keys.sorted() {
            guard let img = chosen[name] else { continue }
            inv.images.append(SyncImage(name: name, record: img.record))
        }
        // Containers' deltas and their images' layers go first, so that containers can land while
        // the rest streams.
        var needed = Set(inv.containers.map(\.delta.digest))
        for c in inv.containers {
            if let i = inv.images.first(where: { $0.name == c.image }) { needed.formUnion(i.record.layers.map(\.digest)) }
        }
        let (meta, layers) = try objectParts(of: inv.images.map(\.record), store: store)
        var seen = Set((meta + layers).map(\.digest))
        let deltas = inv.containers.map(\.delta).filter { seen.insert($0.digest).inserted }
        inv.objects = meta + deltas + layers.filter { needed.contains($0.digest) } + layers.filter { !needed.contains($0.digest) }
        return inv
    }

    /// The deltas of containers `ids`, in that order, two at a time (a stat walk of each tree, bound
    /// by the kernel's per-directory work, shares out over two CPUs). The first failure is thrown.
    static func prepareDeltas(repository: Repository, ids: [String]) throws -> [SyncContainer] {
        let done = Mutex<[Int: Result<SyncContainer, any Error>]>([:])
        try ParallelWalk<Int>(threads: min(2, ids.count)).run(Array(ids.indices), fill: { i, _ in
            let r = Result { try ContainerDelta.prepare(repository: repository, container: ids[i]) }
            done.withLock { $0[i] = r }
            return []
        }, discard: { _ in })
        let results = done.withLock { $0 }
        return try ids.indices.map { i in
            guard let r = results[i] else { throw RuntimeError.internalFailure("the delta of container \(ids[i]) was not made") }
            return try r.get()
        }
    }

    /// The objects of `records`, once each: configs, manifests and indexes, and the layer blobs by size.
    static func objectParts(of records: [ImageRecord], store: Store) throws -> (meta: [SyncObject], layers: [SyncObject]) {
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
        return (meta, layers.sorted { ($0.size, $0.digest.hex) < ($1.size, $1.digest.hex) })
    }
}
