// After a run of a container whose store files are not sealed: finds the linked files the run changed
// in place (ctime after the start, then checked against layer.json), keeps the change as this
// container's own copy, and says which other containers share the file and how to repair them.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct StoreChangeCheck: Sendable {
    let repository: Repository
    let containerID: String
    let root: String
    let info: MaterializeInfo
    let start: timespec

    /// The check for a run of container `id`, or nil when its store files cannot be changed by a run
    /// (sealed at create, or a copy-mode container, which links nothing).
    public static func begin(repository: Repository, containerID id: String, info: MaterializeInfo?) -> StoreChangeCheck? {
        let dir = repository.containersdir + "/" + id
        guard let info, info.needsRunCheck, !info.linksSealedFiles(store: StoreLayout(root: repository.storeDir)) else { return nil }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        // Whole seconds: a filesystem may keep coarser ctimes than the clock.
        return StoreChangeCheck(repository: repository, containerID: id, root: dir + "/" + ContainerStore.rootDir,
                                info: info, start: timespec(tv_sec: now.tv_sec, tv_nsec: 0))
    }

    struct Candidate {
        var path: String
        var st: stat
    }

    /// A changed store file: where it is in the container and in the store, and what changed.
    struct Change {
        var path: String
        var layer: Digest
        var what: [String]
        var sharedWith: [String]
    }

    /// Runs the check; returns the warnings for the user (none when nothing changed).
    public func finish() -> [String] {
        let changes = find()
        guard !changes.isEmpty else { return [] }
        var lines = ["this run changed \(changes.count) file(s) of the image store in place (the store's copy is hardlinked into this container and into others, and udocker could not make it read-only: see 'udocker info'):"]
        for c in changes.prefix(20) {
            var line = "  /\(c.path) (\(c.what.joined(separator: ", "))), layer \(c.layer)"
            if !c.sharedWith.isEmpty { line += "; also in container(s) " + c.sharedWith.joined(separator: ", ") }
            lines.append(line)
        }
        if changes.count > 20 { lines.append("  and \(changes.count - 20) more") }
        lines.append("this container keeps its change as its own copy; run 'udocker store verify --repair' to restore the store's copy for the image and the other containers")
        return lines
    }

    func find() -> [Change] {
        let prefixes: [String] = info.mode == MaterializeMode.link.rawValue ? [""]
            : MaterializePolicy(mode: .auto, linkDirs: info.linkDirs).relativeLinkDirs
        var candidates = [Candidate]()
        for p in prefixes { scan(p, into: &candidates) }
        guard !candidates.isEmpty else { return [] }
        let store = StoreLayout(root: repository.storeDir)
        // Per layer: its entries by path and whether it is sealed, read once.
        var layerFacts = [Digest: (entries: [String: LayerEntry], sealed: Bool)]()
        var changes = [Change]()
        for c in candidates {
            let (path, st) = (c.path, c.st)
            // The layer whose store file this is: the same inode.
            guard let layer = info.layers.reversed().first(where: { d in
                var s = stat()
                return lstat(store.linkRoot(d) + "/" + path, &s) == 0 && s.st_ino == st.st_ino && s.st_dev == st.st_dev
            }) else { continue }
            if layerFacts[layer] == nil {
                let m = (try? FileIO.readFile(store.layerManifest(layer))).flatMap { try? JSONDecoder().decode(LayerManifest.self, from: Data($0)) }
                layerFacts[layer] = (Dictionary((m?.entries ?? []).map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a }),
                                     FileIO.exists(store.linkSealFile(layer)))
            }
            guard let facts = layerFacts[layer], let e = facts.entries[path] else { continue }
            let fd = open(root + "/" + path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            let hashed = try? SHA256Hasher.hash(fd: fd, path: path)
            _ = close(fd)
            guard let (digest, _) = hashed else { continue }
            let found = e.changes(st, digest: digest, size: nil, modes: Store.storeFileModes(e.mode, sealed: facts.sealed))
            let what = [FileChange.mode, .mtime, .content].filter(found.contains).map(\.rawValue)
            guard !what.isEmpty else { continue }
            let shared = sharers(of: st, path: path)
            // This container keeps what its run did, in a file of its own; the store's copy (still
            // changed, still linked by the others) is what verify --repair restores.
            keepOwnCopy(path)
            changes.append(Change(path: path, layer: layer, what: what, sharedWith: shared))
        }
        return changes
    }

    /// Makes the container's file at `path` its own copy, its parent opened beneath ROOT without
    /// following symlinks (a program of the run may still be changing the tree).
    private func keepOwnCopy(_ path: String) {
        let rootFD = open(root, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { return }
        defer { _ = close(rootFD) }
        let (parent, name) = MergedTree.split(path)
        let dirFD = AtFile.openBeneath(rootFD, parent)
        guard dirFD >= 0 else { return }
        defer { _ = close(dirFD) }
        _ = try? Materializer.breakLink(dirFD: dirFD, name: name, path: root + "/" + path, copier: FileCopier(), force: false)
    }

    /// Regular files with other links whose inode changed since the run started, under `prefix`.
    private func scan(_ prefix: String, into out: inout [Candidate]) {
        let start = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard start >= 0 else { return }
        let fd = prefix.isEmpty ? start : openDirectoryBeneath(start, prefix)
        if fd != start { _ = close(start) }
        guard fd >= 0 else { return }
        walk(fd, path: prefix, depth: 0, into: &out)
    }

    private func walk(_ dirFD: Int32, path: String, depth: Int, into out: inout [Candidate]) {
        defer { _ = close(dirFD) }
        guard depth < 256, let entries = try? AtFile.list(dirFD, path: path) else { return }
        for (name, type, _) in entries {
            let child = path.isEmpty ? name : path + "/" + name
            if type == UInt8(DT_DIR) {
                let fd = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if fd >= 0 { walk(fd, path: child, depth: depth + 1, into: &out) }
            } else if type == UInt8(DT_REG) || type == UInt8(DT_UNKNOWN) {
                var st = stat()
                guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG,
                      st.st_nlink > 1, st.st_ctim.tv_sec >= start.tv_sec else { continue }
                out.append(Candidate(path: child, st: st))
            }
        }
    }

    /// The other containers of this repository linked to the same inode (names, else ids).
    private func sharers(of st: stat, path: String) -> [String] {
        guard let all = try? ContainerStore.list(containersdir: repository.containersdir) else { return [] }
        return all.filter { $0.id != containerID && $0.links(path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino)) }
            .map { $0.names.first ?? $0.id }
    }
}

/// A directory beneath `rootFD`, opened without following symlinks, readable (for listing).
private func openDirectoryBeneath(_ rootFD: Int32, _ path: String) -> Int32 {
    let p = AtFile.openBeneath(rootFD, path)
    guard p >= 0 else { return -1 }
    defer { _ = close(p) }
    return openat(p, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
}
