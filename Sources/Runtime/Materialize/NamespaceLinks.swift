// Links to sealed store files (owned by a subordinate uid, which fs.protected_hardlinks refuses to
// link from outside a user namespace): collected a directory at a time while a tree is walked, then made
// by CAS.UserNamespace children in one batch, before directory times are set.
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// The links one walk thread put off, by store layer and directory (the container directory has the
/// store directory's relative path), each name with what the caller needs to copy it instead.
struct DeferredLinks<Payload> {
    struct Key: Hashable {
        let layer: Int
        let dir: String
    }
    struct Batch {
        let layer: Int
        let dir: String
        var names: [String] = []
        var payloads: [Payload] = []
    }
    private(set) var batches: [Key: Batch] = [:]

    mutating func add(layer: Int, dir: String, name: String, _ payload: Payload) {
        let k = Key(layer: layer, dir: dir)
        if batches[k] == nil { batches[k] = Batch(layer: layer, dir: dir) }
        batches[k]?.names.append(name)
        batches[k]?.payloads.append(payload)
    }

    var isEmpty: Bool { batches.isEmpty }

    /// The namespace children for a walk's links, started before the walk so that making their
    /// namespaces (newuidmap, newgidmap) overlaps it; nil when the store is not sealed.
    static func session(for store: Store) -> UserNamespace.Session? {
        store.protection.owner.map { UserNamespace.Session(owner: $0, children: WalkThreads.default) }
    }

    /// Makes every link put off by `threads`, from the store layers `layers` into the tree at `dstRootFD`.
    /// Calls `failed` for each name the kernel refused, with the errno (the caller copies the file or
    /// throws), on the calling thread. Returns how many links were made.
    static func make(_ threads: [DeferredLinks], store: Store, layers: [Digest], dstRootFD: Int32,
                     session: UserNamespace.Session, failed: (Batch, Int, Int32) throws -> Void) throws -> Int {
        let batches = threads.flatMap { $0.batches.values }.sorted { ($0.dir, $0.layer) < ($1.dir, $1.layer) }
        if batches.isEmpty { return 0 }
        var roots = [Int: Int32]()
        defer { for fd in roots.values { _ = close(fd) } }
        for b in batches where roots[b.layer] == nil {
            let fd = open(store.linkRoot(layers[b.layer]), AtFile.oPath | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.layerMissing(layers[b.layer].description) }
            roots[b.layer] = fd
        }
        let jobs = batches.map { b in
            NamespaceJob.link(from: roots[b.layer] ?? -1, b.dir, to: dstRootFD, b.dir, names: b.names)
        }
        let results: [[Int32]]
        do {
            results = try session.run(jobs)
        } catch {
            throw RuntimeError.storeProtection(reason: "\(error)")
        }
        var linked = 0
        for (b, r) in zip(batches, results) {
            for (i, e) in r.enumerated() {
                if e == 0 { linked += 1 } else { try failed(b, i, e) }
            }
        }
        return linked
    }
}

/// Whether a link to a store file failed in a way that a copy answers: too many links, another user's
/// file (fs.protected_hardlinks), another filesystem, or no permission.
func linkRefused(_ err: Int32) -> Bool {
    err == EMLINK || err == EPERM || err == EXDEV || err == EACCES
}
