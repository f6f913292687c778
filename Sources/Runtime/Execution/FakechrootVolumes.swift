// Volumes for the Fakechroot modes with Debian's libfakechroot, which has FAKECHROOT_EXCLUDE_PATH
// but no directory map: excluded same-path volumes, and recorded symlinks for the others.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim
import Foundation

/// -v /data:/data is an excluded path; -v /host:/cont is a symlink ROOT/cont -> /host with /host
/// excluded (udocker's own libfakechroot has FAKECHROOT_DIR_MAP instead). The links are recorded so
/// later runs, mode switches and `setup --purge` remove them, and a shared lock held while the program
/// runs keeps another run from re-pointing a link in use.
public enum FakechrootVolumes {
    static let recordFile = "fakechroot.links.json"
    static let lockFile = ".fakechroot-links.lock"

    struct Link: Codable, Equatable {
        /// The container path of the symlink.
        var path: String
        /// The host directory it points to.
        var target: String
        /// The container had an empty directory there (mode kept), restored on removal.
        var emptyDirectoryMode: UInt32?
    }

    struct Prepared {
        /// Paths for FAKECHROOT_EXCLUDE_PATH.
        var exclude: [String]
        /// A descriptor, left open across exec, holding a shared lock on the links while the
        /// program and its children run; nil when the state directory is not writable.
        var lockFD: Int32?
    }

    /// Sets up `volumes` for a run of the tree.
    static func prepare(_ volumes: [Volume], tree: FakechrootTree) throws -> Prepared {
        var exclude: [String] = []
        func excludePath(_ p: String) { if !exclude.contains(p) { exclude.append(p) } }
        var wanted: [Link] = []
        for v in volumes {
            let real = FakechrootTree.realPath(v.host) ?? v.host
            if v.host == v.container {
                excludePath(v.container)
                if real != v.container { excludePath(real) }
                continue
            }
            if let outer = volumes.first(where: { $0.container != v.container && v.container.hasPrefix($0.container + "/") }) {
                throw RuntimeError.badRunOption("-v \(v.host):\(v.container) is inside the volume \(outer.container)",
                    "Fakechroot modes cannot put a volume inside another one with a different host path; bind the outer one only, or use P1")
            }
            guard FileIO.isDirectory(real) else {
                throw RuntimeError.badRunOption("-v \(v.host):\(v.container): the host path is not a directory",
                    "Fakechroot modes can give a file only at its own path (-v \(v.host):\(v.host)); use P1 to bind a file elsewhere")
            }
            excludePath(real)
            wanted.append(Link(path: v.container, target: real, emptyDirectoryMode: nil))
        }

        try ContainerStore.io { try FileIO.mkdirs(tree.stateDir, mode: 0o700) }
        let lockPath = tree.stateDir + "/" + lockFile
        // No O_CLOEXEC: the program inherits the descriptor, so the lock lasts as long as it runs.
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o600)
        if fd < 0 {
            if wanted.isEmpty { return Prepared(exclude: exclude, lockFD: nil) }
            throw RuntimeError.io("open", lockPath, errno)
        }
        do {
            if ud_ofd_lock(fd, 1, 0) == 0 {
                // No other run of this container is active: links may be changed and stale ones removed.
                try reconcile(wanted, tree: tree, exclusive: true)
                _ = ud_ofd_lock(fd, 0, 1)
            } else {
                if ud_ofd_lock(fd, 0, 1) != 0 { throw RuntimeError.io("lock", lockPath, errno) }
                try reconcile(wanted, tree: tree, exclusive: false)
            }
        } catch {
            _ = close(fd)
            throw error
        }
        return Prepared(exclude: exclude, lockFD: fd)
    }

    /// Makes the wanted links; with `exclusive` also re-points links and removes links no longer
    /// wanted. The record is edited under a second, short lock.
    private static func reconcile(_ wanted: [Link], tree: FakechrootTree, exclusive: Bool) throws {
        let edit = try containerLock(tree.stateDir + "/.fakechroot-links.edit")
        defer { edit.unlock() }
        var record = readRecord(tree.stateDir)
        if exclusive {
            for old in record where !wanted.contains(where: { $0.path == old.path }) {
                remove(old, tree: tree)
                record.removeAll { $0.path == old.path }
            }
        }
        for w in wanted {
            let made = try place(w, tree: tree, record: record, mayRepoint: exclusive)
            record.removeAll { $0.path == made.path }
            record.append(made)
        }
        try writeRecord(record, stateDir: tree.stateDir)
    }

    /// Creates (or checks) the symlink for `link`. Returns the record entry.
    private static func place(_ link: Link, tree: FakechrootTree, record: [Link], mayRepoint: Bool) throws -> Link {
        let parent = try makeParents(FileIO.parent(of: link.path), tree: tree, volume: link)
        let host = parent + "/" + FileIO.basename(of: link.path)
        let ours = record.first { $0.path == link.path }
        var st = stat()
        guard lstat(host, &st) == 0 else {
            if symlink(link.target, host) != 0 { throw RuntimeError.io("symlink", host, errno) }
            return Link(path: link.path, target: link.target, emptyDirectoryMode: ours?.emptyDirectoryMode)
        }
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            let current = ContainerStore.readLink(host)
            if current == link.target { return Link(path: link.path, target: link.target, emptyDirectoryMode: ours?.emptyDirectoryMode) }
            guard let ours else { break }
            guard mayRepoint else {
                throw RuntimeError.badRunOption("-v \(link.target):\(link.path): another run of this container has \(ours.target) at \(link.path)",
                    "Fakechroot modes show one host directory at a container path at a time; wait for it to end, or use the same host path")
            }
            let tmp = parent + "/.\(FileIO.basename(of: link.path)).udocker-\(getpid())"
            _ = unlink(tmp)
            if symlink(link.target, tmp) != 0 { throw RuntimeError.io("symlink", tmp, errno) }
            if rename(tmp, host) != 0 { let e = errno; _ = unlink(tmp); throw RuntimeError.io("rename", host, e) }
            return Link(path: link.path, target: link.target, emptyDirectoryMode: ours.emptyDirectoryMode)
        case S_IFDIR:
            guard (try? FileIO.listDirectory(host))?.isEmpty == true else { break }
            let mode = UInt32(st.st_mode & 0o7777)
            if rmdir(host) != 0 { throw RuntimeError.io("rmdir", host, errno) }
            if symlink(link.target, host) != 0 {
                let e = errno
                _ = mkdir(host, mode_t(mode))
                throw RuntimeError.io("symlink", host, e)
            }
            return Link(path: link.path, target: link.target, emptyDirectoryMode: mode)
        default:
            break
        }
        throw RuntimeError.badRunOption("-v \(link.target):\(link.path): \(link.path) exists in the container and is not an empty directory",
            "Fakechroot modes show a host directory at a container path through a symlink there; use the same path (-v \(link.target):\(link.target)), a container path that does not exist or is empty, or P1")
    }

    /// The host path of a container directory, made (inside ROOT) when missing.
    private static func makeParents(_ dir: String, tree: FakechrootTree, volume: Link) throws -> String {
        if let h = tree.inside(dir) {
            guard FileIO.isDirectory(h) else {
                throw RuntimeError.badRunOption("-v \(volume.target):\(volume.path): \(dir) is not a directory in the container", "choose another container path")
            }
            return h
        }
        let up = try makeParents(FileIO.parent(of: dir), tree: tree, volume: volume)
        let h = up + "/" + FileIO.basename(of: dir)
        if mkdir(h, 0o755) != 0 && errno != EEXIST { throw RuntimeError.io("mkdir", h, errno) }
        // Never through a symlink (another run's volume link): that would create on the host.
        var st = stat()
        guard lstat(h, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw RuntimeError.badRunOption("-v \(volume.target):\(volume.path): \(dir) is not a directory in the container", "choose another container path")
        }
        return h
    }

    /// Removes one recorded link (only when it is still the symlink made), restoring an empty
    /// directory that was there.
    private static func remove(_ link: Link, tree: FakechrootTree) {
        remove(link, root: tree.root)
    }

    private static func remove(_ link: Link, root: String) {
        guard let parent = ContainerPath(root: root, volumes: []).hostPath(FileIO.parent(of: link.path)),
              parent == root || parent.hasPrefix(root + "/") else { return }
        let host = parent + "/" + FileIO.basename(of: link.path)
        var st = stat()
        guard lstat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK, ContainerStore.readLink(host) == link.target else { return }
        if unlink(host) == 0, let mode = link.emptyDirectoryMode { _ = mkdir(host, mode_t(mode)) }
    }

    /// Removes every link runs left in the tree (for `setup --purge` and mode switches). Returns
    /// the container paths removed.
    public static func purge(root: String, stateDir: String) throws -> [String] {
        let record = readRecord(stateDir)
        guard !record.isEmpty, let real = FakechrootTree.realPath(root) else { return [] }
        let edit = try containerLock(stateDir + "/.fakechroot-links.edit")
        defer { edit.unlock() }
        for l in record { remove(l, root: real) }
        _ = unlink(stateDir + "/" + recordFile)
        return record.map(\.path)
    }

    static func readRecord(_ stateDir: String) -> [Link] {
        guard let b = try? FileIO.readFile(stateDir + "/" + recordFile) else { return [] }
        return (try? JSONDecoder().decode([Link].self, from: Data(b))) ?? []
    }

    private static func writeRecord(_ links: [Link], stateDir: String) throws {
        let path = stateDir + "/" + recordFile
        if links.isEmpty { _ = unlink(path); return }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? e.encode(links) else { throw RuntimeError.internalFailure("encoding the volume links") }
        try ContainerStore.io { try FileIO.writeAtomically(path, Array(data) + [10], mode: 0o644) }
    }
}
