// Whole-tree operations on a container's files, all with *at() calls that never follow symlinks:
// cloning (links where a file is still the store's, copies elsewhere), removing, fixing permissions, size.
import CAS
import CShim
#if canImport(Glibc)
import Glibc
#endif

enum ContainerTree {
    private static let maxDepth = 256

    // MARK: clone

    /// Copies the tree `srcRoot` into the existing empty directory `dstRoot`. A regular file that still
    /// shares its inode with the store file it was materialised from (`layers`: the image's diff_ids,
    /// base first) is linked again; every other file is copied (reflink where possible), with hardlinks
    /// between copied files kept. Directories are shared out between threads (`ParallelWalk`).
    static func clone(store: Store, layers: [Digest], from srcRoot: String, to dstRoot: String,
                      threads: Int = WalkThreads.default) throws -> MaterializeReport {
        let merged: MergedNode?
        if layers.isEmpty {
            merged = nil
        } else {
            merged = MergedTree(layers: try Materializer(store: store).inputs(layers)).root
        }
        let src = open(srcRoot, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if src < 0 { throw RuntimeError.io("open", srcRoot, errno) }
        defer { _ = close(src) }
        let dst = open(dstRoot, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if dst < 0 { throw RuntimeError.io("open", dstRoot, errno) }
        defer { _ = close(dst) }
        let c = Cloner(store: store, layers: layers, dstRoot: dstRoot, dstRootFD: dst,
                       trustDirectoryInodes: inodesComparable(srcRoot, store.layout.root), threads: threads)
        let report = try c.run(src: src, merged: merged)
        var st = stat()
        if fstat(src, &st) == 0 {
            _ = fchmodat(AT_FDCWD, dstRoot, (st.st_mode & 0o7777) | 0o700, 0)
            var times = AtFile.times(st.st_mtim)
            _ = utimensat(AT_FDCWD, dstRoot, &times, AT_SYMLINK_NOFOLLOW)
        }
        return report
    }

    /// Whether a directory entry's d_ino can stand for the file's inode when comparing a container
    /// file with the store's: both on one device of a local filesystem whose readdir reports real
    /// inode numbers (not overlayfs, FUSE or a network filesystem, where d_ino may be made up).
    private static func inodesComparable(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0, sa.st_dev == sb.st_dev else { return false }
        let ext4: Int = 0xEF53, xfs: Int = 0x5846_5342, btrfs: Int = 0x9123_683E, tmpfs: Int = 0x0102_1994
        return [ext4, xfs, btrfs, tmpfs].contains(ud_statfs_type(a))
    }

    private final class Cloner: @unchecked Sendable {
        // @unchecked: the merged tree is only read while threads run; each thread has its own `Worker`.
        /// A directory to clone: `src` and `dst` are open on the source and the new directory (owned by
        /// the unit, except the roots').
        struct Unit {
            let src: Int32
            let dst: Int32
            let path: String
            let merged: MergedNode?
            let depth: Int
        }

        /// One thread's share, and the store inodes of the directory it is cloning.
        final class Worker: TreeWorker {
            /// Directories made, with the source's mtime, set once the whole tree exists.
            var directoryTimes: [(path: String, mtime: timespec)] = []
            /// d_ino by name of the store directories listed for the container directory `storeInodesPath`,
            /// by layer (a directory's files may come from several layers, in any order).
            var storeInodesPath: String?
            var storeInodes: [Int: [String: UInt64]] = [:]
            /// Links to sealed store files, made after the walk by namespace children; each name with its
            /// source's stat and tree node, to copy it if the link is refused.
            var deferred = DeferredLinks<(st: stat, node: MergedNode)>()
        }

        let store: Store
        let layers: [Digest]
        let dstRoot: String
        let dstRootFD: Int32
        /// See `inodesComparable`: then a file whose d_ino is the store file's is linked again
        /// without a stat of either (two stats a file were most of a clone's system calls).
        let trustDirectoryInodes: Bool
        let walk: ParallelWalk<Unit>

        init(store: Store, layers: [Digest], dstRoot: String, dstRootFD: Int32, trustDirectoryInodes: Bool, threads: Int) {
            self.store = store
            self.layers = layers
            self.dstRoot = dstRoot
            self.dstRootFD = dstRootFD
            self.trustDirectoryInodes = trustDirectoryInodes
            walk = ParallelWalk(threads: threads)
        }

        func run(src: Int32, merged: MergedNode?) throws -> MaterializeReport {
            let workers = (0..<walk.threads).map { _ in Worker(store: store, layers: layers) }
            defer { for w in workers { w.sources.close() } }
            let root = Unit(src: src, dst: dstRootFD, path: "", merged: merged, depth: 0)
            let session = DeferredLinks<(st: stat, node: MergedNode)>.session(for: store)
            func release(_ u: Unit) {
                if u.src != root.src { _ = close(u.src) }
                if u.dst != root.dst { _ = close(u.dst) }
            }
            try walk.run([root], fill: { unit, thread in
                defer { release(unit) }
                return try cloneDirectory(unit, workers[thread])
            }, discard: release)
            let nsLinked = try session.map { try makeDeferredLinks(workers, srcRootFD: src, session: $0) } ?? 0
            try setDirectoryTimes(workers.flatMap(\.directoryTimes))
            var report = TreeWorker.merged(workers)
            report.linked += nsLinked
            return report
        }

        /// Makes the links the threads put off (sealed store); a refused one is copied from the source
        /// container, as `cloneFile` does.
        private func makeDeferredLinks(_ workers: [Worker], srcRootFD: Int32, session: UserNamespace.Session) throws -> Int {
            let w = workers[0]
            return try DeferredLinks.make(workers.map(\.deferred), store: store, layers: layers, dstRootFD: dstRootFD,
                                          session: session) { batch, i, err in
                let name = batch.names[i]
                let path = batch.dir.isEmpty ? name : batch.dir + "/" + name
                guard linkRefused(err) else {
                    throw RuntimeError.io("link", dstRoot + "/" + path, err)
                }
                w.report.linkFallbacks += 1
                let src = AtFile.openBeneath(srcRootFD, batch.dir)
                if src < 0 { throw RuntimeError.io("open", "/" + batch.dir, errno) }
                defer { _ = close(src) }
                let dst = AtFile.openBeneath(dstRootFD, batch.dir)
                if dst < 0 { throw RuntimeError.io("open", dstRoot + "/" + batch.dir, errno) }
                defer { _ = close(dst) }
                let (st, node) = batch.payloads[i]
                try cloneFile(src: src, dst: dst, name: name, path: path, st: st, node: node, parentPath: batch.dir,
                              relink: false, w)
            }
        }

        /// Gives the directories made their source's mtime; each parent is opened beneath the root
        /// without following a symlink.
        private func setDirectoryTimes(_ times: [(path: String, mtime: timespec)]) throws {
            var parent: (path: String, fd: Int32)?
            defer { if let parent { _ = close(parent.fd) } }
            // By parent, so each parent is opened once.
            let byParent = times.map { (MergedTree.split($0.path), $0.mtime) }.sorted { $0.0.0 < $1.0.0 }
            for ((dir, name), mtime) in byParent {
                if parent?.path != dir {
                    if let parent { _ = close(parent.fd) }
                    parent = nil
                    let fd = AtFile.openBeneath(dstRootFD, dir)
                    if fd < 0 { throw RuntimeError.io("open", dstRoot + "/" + dir, errno) }
                    parent = (dir, fd)
                }
                guard let fd = parent?.fd else { continue }
                var t = AtFile.times(mtime)
                _ = utimensat(fd, name, &t, AT_SYMLINK_NOFOLLOW)
            }
        }

        /// Clones the entries of one directory; returns its subdirectories, made and open.
        func cloneDirectory(_ unit: Unit, _ w: Worker) throws -> [Unit] {
            let (src, dst, path, merged) = (unit.src, unit.dst, unit.path, unit.merged)
            var made: [Unit] = []
            do {
                for (name, type, inode) in try AtFile.list(src, path: path).sorted(by: { $0.name < $1.name }) {
                    let childPath = path.isEmpty ? name : path + "/" + name
                    let node = merged?.kind == .directory ? merged?.children[name] : nil
                    if type == UInt8(DT_REG), try relinkUnchanged(name: name, inode: inode, node: node, src: src, dst: dst,
                                                                 path: childPath, parentPath: path, w) {
                        continue
                    }
                    var st = stat()
                    if fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0 { throw RuntimeError.io("stat", "/" + childPath, errno) }
                    switch st.st_mode & S_IFMT {
                    case S_IFDIR:
                        guard unit.depth < ContainerTree.maxDepth else {
                            w.notes.append((childPath, "directory '/\(childPath)' is nested too deep; not cloned"))
                            continue
                        }
                        let mode = (st.st_mode & 0o7777) | 0o700
                        if mkdirat(dst, name, mode) != 0 { throw RuntimeError.io("mkdir", dstRoot + "/" + childPath, errno) }
                        _ = fchmodat(dst, name, mode, 0)
                        let s = AtFile.openDirectory(src, name)
                        if s < 0 { throw RuntimeError.io("open", "/" + childPath, errno) }
                        let d = AtFile.openDirectory(dst, name)
                        if d < 0 {
                            let e = errno
                            _ = close(s)
                            throw RuntimeError.io("open", dstRoot + "/" + childPath, e)
                        }
                        w.report.directories += 1
                        made.append(Unit(src: s, dst: d, path: childPath, merged: node, depth: unit.depth + 1))
                        w.directoryTimes.append((childPath, st.st_mtim))
                    case S_IFLNK:
                        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                        let n = readlinkat(src, name, &buf, buf.count - 1)
                        if n < 0 { throw RuntimeError.io("readlink", "/" + childPath, errno) }
                        buf[n] = 0
                        if symlinkat(buf, dst, name) != 0 { throw RuntimeError.io("symlink", dstRoot + "/" + childPath, errno) }
                        var times = AtFile.times(st.st_mtim)
                        _ = utimensat(dst, name, &times, AT_SYMLINK_NOFOLLOW)
                        w.report.symlinks += 1
                    case S_IFREG:
                        try cloneFile(src: src, dst: dst, name: name, path: childPath, st: st, node: node, parentPath: path, w)
                    case S_IFIFO:
                        if mkfifoat(dst, name, st.st_mode & 0o7777) != 0 { throw RuntimeError.io("mkfifo", dstRoot + "/" + childPath, errno) }
                        _ = fchmodat(dst, name, st.st_mode & 0o7777, 0)
                        w.report.fifos += 1
                    default:
                        w.notes.append((childPath, "'/\(childPath)' is a device or socket; not cloned"))
                    }
                }
            } catch {
                for u in made {
                    _ = close(u.src)
                    _ = close(u.dst)
                }
                throw error
            }
            return made
        }

        /// Links `name` again from the store when its d_ino is the store file's (see
        /// `trustDirectoryInodes`); false when that cannot be told this way.
        private func relinkUnchanged(name: String, inode: UInt64, node: MergedNode?, src: Int32, dst: Int32, path: String,
                                     parentPath: String, _ w: Worker) throws -> Bool {
            guard trustDirectoryInodes, inode != 0, let node, node.kind == .file, node.layer >= 0,
                  let storeDir = try? w.sources.directory(node.layer, parentPath) else { return false }
            if w.storeInodesPath != parentPath {
                w.storeInodesPath = parentPath
                w.storeInodes = [:]
            }
            if w.storeInodes[node.layer] == nil {
                var inodes = [String: UInt64]()
                for e in (try? AtFile.list(storeDir, path: parentPath)) ?? [] { inodes[e.name] = e.inode }
                w.storeInodes[node.layer] = inodes
            }
            guard w.storeInodes[node.layer]?[name] == inode else { return false }
            return try linkFromStore(storeDir, name, src: src, dst: dst, path: path, parentPath: parentPath, node: node, st: nil, w)
        }

        /// Links the store file `name` of `storeDir` into `dst`: true when linked (or put off for the
        /// namespace children of a sealed store), false (counted as a fallback) when the filesystem
        /// refuses the link, so the file is copied instead.
        private func linkFromStore(_ storeDir: Int32, _ name: String, src: Int32, dst: Int32, path: String, parentPath: String,
                                   node: MergedNode, st known: stat?, _ w: Worker) throws -> Bool {
            if store.protection.owner != nil {
                var st = stat()
                if let known { st = known } else if fstatat(src, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                    throw RuntimeError.io("stat", "/" + path, errno)
                }
                w.deferred.add(layer: node.layer, dir: parentPath, name: name, (st, node))
                return true
            }
            if linkat(storeDir, name, dst, name, 0) == 0 {
                w.report.linked += 1
                return true
            }
            let e = errno
            guard linkRefused(e) else {
                throw RuntimeError.io("link", dstRoot + "/" + path, e)
            }
            w.report.linkFallbacks += 1
            return false
        }

        private func cloneFile(src: Int32, dst: Int32, name: String, path: String, st: stat, node: MergedNode?,
                               parentPath: String, relink: Bool = true, _ w: Worker) throws {
            // Still the store's inode: link again (the store file is read-only, so it is unchanged).
            // Where directory inodes are trusted, `relinkUnchanged` has decided this already.
            if relink, !trustDirectoryInodes, let node, node.kind == .file, node.layer >= 0, st.st_nlink > 1,
               let storeDir = try? w.sources.directory(node.layer, parentPath) {
                var sst = stat()
                if fstatat(storeDir, name, &sst, AT_SYMLINK_NOFOLLOW) == 0 && sst.st_dev == st.st_dev && sst.st_ino == st.st_ino,
                   try linkFromStore(storeDir, name, src: src, dst: dst, path: path, parentPath: parentPath, node: node, st: st, w) {
                    return
                }
            }
            // A hardlink among the container's own files: the clone links its first copy.
            let key = AnyHashable(UInt64(st.st_ino))
            let first = st.st_nlink > 1 ? walk.linkFirstCopy(of: key, rootFD: dstRootFD, into: dst, name) : .notLinked
            if first == .linked {
                w.report.hardlinks += 1
                return
            }
            var copied = false
            defer { if first == .yours { walk.copied(key, at: copied ? path : nil) } }
            let mode = st.st_mode & 0o7777
            let s = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if s < 0 { throw RuntimeError.io("open", "/" + path, errno) }
            defer { _ = close(s) }
            let d = openat(dst, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode | 0o200)
            if d < 0 { throw RuntimeError.io("create", dstRoot + "/" + path, errno) }
            defer { _ = close(d) }
            try w.copier.copy(from: s, to: d, size: UInt64(st.st_size), path: dstRoot + "/" + path)
            if fchmod(d, mode) != 0 { throw RuntimeError.io("chmod", dstRoot + "/" + path, errno) }
            AtFile.setMtime(fd: d, st.st_mtim)
            if st.st_size == 0 { w.report.emptyFiles += 1 } else { w.report.copied += 1 }
            copied = true
        }
    }

    // MARK: remove

    /// Removes `path` and everything below it without following symlinks; directories are made
    /// owner-writable first (never files: a linked file's mode is the store's).
    /// Everything but directories goes first, a directory at a time on several threads (`ParallelWalk`);
    /// then the emptied directories, deepest first.
    static func remove(_ path: String, threads: Int = WalkThreads.default) throws {
        let (parent, name) = MergedTree.split(path)
        let dirFD = open(parent.isEmpty ? "/" : parent, AtFile.oPath | O_DIRECTORY | O_CLOEXEC)
        if dirFD < 0 {
            if errno == ENOENT { return }
            throw RuntimeError.io("open", parent, errno)
        }
        defer { _ = close(dirFD) }
        if let top = try openForRemoval(dirFD, name, path: path) {
            try ParallelWalk<RemovalUnit>(threads: threads).run([RemovalUnit(fd: top, path: path, depth: 0)], fill: { unit, _ in
                defer { _ = close(unit.fd) }
                return try removeFiles(unit)
            }, discard: { _ = close($0.fd) })
        }
        try remove(dirFD, name, path: path, depth: 0)
    }

    /// A directory whose entries other than directories are to be removed; `fd` is owned by the unit.
    private struct RemovalUnit {
        let fd: Int32
        let path: String
        let depth: Int
    }

    /// Opens directory `name` for removing its entries, owner-rwx first where it was not; nil when it is
    /// gone or not a directory.
    private static func openForRemoval(_ parentFD: Int32, _ name: String, path: String) throws -> Int32? {
        var st = stat()
        if fstatat(parentFD, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            if errno == ENOENT { return nil }
            throw RuntimeError.io("stat", path, errno)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        if st.st_mode & 0o700 != 0o700 { _ = fchmodat(parentFD, name, (st.st_mode & 0o7777) | 0o700, 0) }
        let fd = AtFile.openDirectory(parentFD, name)
        if fd < 0 { throw RuntimeError.io("open", path, errno) }
        return fd
    }

    /// Removes one directory's entries other than directories; returns its subdirectories, open.
    private static func removeFiles(_ unit: RemovalUnit) throws -> [RemovalUnit] {
        var subdirectories: [RemovalUnit] = []
        do {
            for (child, type, _) in try AtFile.list(unit.fd, path: unit.path) {
                let childPath = unit.path + "/" + child
                if type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN) {
                    guard unit.depth < 4096 else { throw RuntimeError.io("remove", childPath, ELOOP) }
                    if let fd = try openForRemoval(unit.fd, child, path: childPath) {
                        subdirectories.append(RemovalUnit(fd: fd, path: childPath, depth: unit.depth + 1))
                        continue
                    }
                    if type == UInt8(DT_DIR) { continue }   // gone meanwhile
                }
                if unlinkat(unit.fd, child, 0) != 0 && errno != ENOENT {
                    throw RuntimeError.io("remove", childPath, errno)
                }
            }
        } catch {
            for u in subdirectories { _ = close(u.fd) }
            throw error
        }
        return subdirectories
    }

    private static func remove(_ parentFD: Int32, _ name: String, path: String, depth: Int) throws {
        guard let fd = try openForRemoval(parentFD, name, path: path) else {
            // Not a directory, or gone (then the unlink finds nothing either).
            if unlinkat(parentFD, name, 0) != 0 && errno != ENOENT { throw RuntimeError.io("remove", path, errno) }
            return
        }
        do {
            defer { _ = close(fd) }
            for (child, type, _) in try AtFile.list(fd, path: path) {
                if type == UInt8(DT_DIR) || type == UInt8(DT_UNKNOWN) {
                    guard depth < 4096 else { throw RuntimeError.io("remove", path + "/" + child, ELOOP) }
                    try remove(fd, child, path: path + "/" + child, depth: depth + 1)
                } else if unlinkat(fd, child, 0) != 0 && errno != ENOENT {
                    throw RuntimeError.io("remove", path + "/" + child, errno)
                }
            }
        }
        if unlinkat(parentFD, name, AT_REMOVEDIR) != 0 && errno != ENOENT { throw RuntimeError.io("remove", path, errno) }
    }

    // MARK: permissions

    /// `setup --fixperm`: every directory owner-rwx, every file owner-readable (a file still linked to
    /// the store is copied first, so the store's mode never changes). Returns how many were changed.
    static func fixPermissions(_ root: String) throws -> Int {
        let fd = open(root, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root, errno) }
        defer { _ = close(fd) }
        _ = fchmodat(AT_FDCWD, root, 0o700 | (statMode(root) & 0o7777), 0)
        let copier = FileCopier()
        return try fixPermissions(fd, path: root, copier: copier, depth: 0)
    }

    private static func statMode(_ path: String) -> mode_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : 0o700
    }

    private static func fixPermissions(_ dirFD: Int32, path: String, copier: FileCopier, depth: Int) throws -> Int {
        var changed = 0
        for (name, _, _) in try AtFile.list(dirFD, path: path) {
            var st = stat()
            if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) != 0 { continue }
            let mode = st.st_mode & 0o7777
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if mode & 0o700 != 0o700 {
                    if fchmodat(dirFD, name, mode | 0o700, 0) != 0 { throw RuntimeError.io("chmod", path + "/" + name, errno) }
                    changed += 1
                }
                guard depth < maxDepth else { continue }
                let sub = AtFile.openDirectory(dirFD, name)
                if sub < 0 { throw RuntimeError.io("open", path + "/" + name, errno) }
                defer { _ = close(sub) }
                changed += try fixPermissions(sub, path: path + "/" + name, copier: copier, depth: depth + 1)
            case S_IFREG:
                if mode & 0o400 == 0 {
                    // Store files are always owner-readable, so a file lacking it is not the store's;
                    // a hardlink of it elsewhere in the container gets its own copy all the same.
                    if st.st_nlink > 1 {
                        _ = try? Materializer.breakLink(dirFD: dirFD, name: name, path: path + "/" + name, copier: copier, force: false)
                    }
                    if fchmodat(dirFD, name, mode | 0o400, 0) != 0 { throw RuntimeError.io("chmod", path + "/" + name, errno) }
                    changed += 1
                }
            default:
                continue
            }
        }
        return changed
    }

    // MARK: size

    /// Disk used by the tree (allocated blocks, each inode once, one filesystem as `du -s -x`), split
    /// into what only the tree holds and what it shares: an inode with more links than the tree has
    /// names for it is also linked from outside (a store file, which a link or auto container shares
    /// with the store and other containers). One fstatat per entry and no walk of the store, on
    /// several threads (a directory at a time). Nil when `root` is not a directory.
    static func usage(_ root: String, threads: Int = WalkThreads.default) -> DiskUsage? {
        let rootFD = open(root, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { return nil }
        defer { _ = close(rootFD) }
        var st = stat()
        guard fstat(rootFD, &st) == 0 else { return nil }
        let walk = ParallelWalk<UsageUnit>(threads: threads)
        let workers = (0..<walk.threads).map { _ in UsageWorker(rootFD: rootFD, device: UInt64(st.st_dev)) }
        // fill never throws: an unreadable directory is left out, as du does (with a warning).
        try? walk.run([UsageUnit(path: "", depth: 0)], fill: { unit, t in workers[t].directory(unit) }, discard: { _ in })
        var usage = DiskUsage(own: UInt64(st.st_blocks) * 512, shared: 0)
        var linked = [UInt64: (links: UInt64, seen: UInt64, bytes: UInt64)]()
        for w in workers {
            usage.own += w.own
            for (ino, i) in w.linked {
                let seen = (linked[ino]?.seen ?? 0) + i.seen
                linked[ino] = (i.links, seen, i.bytes)
            }
        }
        for (_, i) in linked {
            if i.seen >= i.links { usage.own += i.bytes } else { usage.shared += i.bytes }
        }
        return usage
    }

    /// A directory of the tree, by its path below the root (opened when it is measured, so the walk
    /// holds no descriptor per waiting directory).
    private struct UsageUnit {
        let path: String
        let depth: Int
    }

    /// One thread's share of a `usage` walk.
    private final class UsageWorker {
        let rootFD: Int32
        let device: UInt64
        /// Directories and files with one link.
        var own: UInt64 = 0
        /// Files with several links, by inode: their link count, the names seen, their blocks.
        var linked: [UInt64: (links: UInt64, seen: UInt64, bytes: UInt64)] = [:]

        init(rootFD: Int32, device: UInt64) { self.rootFD = rootFD; self.device = device }

        /// Measures the entries of one directory; returns its subdirectories.
        func directory(_ unit: UsageUnit) -> [UsageUnit] {
            let fd = AtFile.openBeneath(rootFD, unit.path)
            guard fd >= 0 else { return [] }
            defer { _ = close(fd) }
            guard let entries = try? AtFile.list(fd, path: unit.path) else { return [] }
            var subdirectories = [UsageUnit]()
            for (name, _, _) in entries {
                var st = stat()
                guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0, UInt64(st.st_dev) == device else { continue }
                let bytes = UInt64(st.st_blocks) * 512
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    own += bytes
                    if unit.depth + 1 < ContainerTree.maxDepth {
                        subdirectories.append(UsageUnit(path: unit.path.isEmpty ? name : unit.path + "/" + name, depth: unit.depth + 1))
                    }
                } else if st.st_nlink > 1 {
                    let ino = UInt64(st.st_ino)
                    let seen = linked[ino]?.seen ?? 0
                    linked[ino] = (UInt64(st.st_nlink), seen + 1, bytes)
                } else {
                    own += bytes
                }
            }
            return subdirectories
        }
    }
}

/// Disk a container's tree takes, in bytes of allocated blocks.
public struct DiskUsage: Sendable, Equatable {
    /// Inodes only the tree holds: directories, and files with no link from outside it (what the
    /// container costs beyond the store).
    public var own: UInt64 = 0
    /// Files also linked from outside the tree (the store's files it is linked to).
    public var shared: UInt64 = 0
    /// What `du -s` counts.
    public var total: UInt64 { own + shared }
}
