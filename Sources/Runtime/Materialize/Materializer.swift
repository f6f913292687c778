// Builds a container's ROOT from the store's unpacked layers (never from tars): the merged tree is
// computed from layer.json files, then created with *at() calls that never follow a symlink.
import CAS
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// What materialising a tree did.
public struct MaterializeReport: Sendable, Equatable {
    public var directories = 0
    /// Regular files made hardlinks to store files.
    public var linked = 0
    /// Regular files made independent copies (reflinked ones included).
    public var copied = 0
    /// Copies the filesystem made by reflink (no data copied).
    public var reflinked = 0
    /// Empty files created (never linked).
    public var emptyFiles = 0
    /// Hardlinks of the image kept as hardlinks inside the container (copied files only).
    public var hardlinks = 0
    public var symlinks = 0
    public var fifos = 0
    /// Files that were to be linked but were copied because the filesystem refused the link.
    public var linkFallbacks = 0
    public var bytesCopied: UInt64 = 0
    /// Entries skipped (devices outside /dev, paths under symlinks), one sentence each.
    public var notes: [String] = []
    /// Device nodes of the image's /dev, never created (every mode gives the container the host's
    /// /dev, as udocker does, which skips them silently): paths, for -D only.
    public var devicesNotCreated: [String] = []
    public init() {}
}

/// One walk thread's share of a materialisation or a clone: its descriptors of the layers' directories,
/// its copier, its counts, and its notes by the directory they were made in.
class TreeWorker {
    let sources: LayerDirCache
    let copier = FileCopier()
    var report = MaterializeReport()
    var notes: [(path: String, text: String)] = []
    var devices: [String] = []

    init(store: Store, layers: [Digest]) {
        sources = LayerDirCache(store: store, layers: layers)
    }

    /// The threads' counts and copies summed, their notes in path order, so the report does not depend
    /// on which thread did what.
    static func merged(_ workers: [TreeWorker]) -> MaterializeReport {
        var r = MaterializeReport()
        var notes: [(path: String, text: String)] = []
        for w in workers {
            r.directories += w.report.directories
            r.linked += w.report.linked
            r.copied += w.report.copied
            r.reflinked += w.copier.reflinked
            r.emptyFiles += w.report.emptyFiles
            r.hardlinks += w.report.hardlinks
            r.symlinks += w.report.symlinks
            r.fifos += w.report.fifos
            r.linkFallbacks += w.report.linkFallbacks
            r.bytesCopied += w.copier.bytesCopied
            notes += w.notes
            r.devicesNotCreated += w.devices
        }
        r.notes = notes.sorted { $0.path < $1.path }.map(\.text)
        r.devicesNotCreated.sort()
        return r
    }
}

/// Which files a container links to the store and which it copies.
public struct MaterializePolicy: Sendable, Equatable {
    public var mode: MaterializeMode
    /// Container paths ("/usr", "/opt/x") whose files `auto` links; everything else is copied.
    public var linkDirs: [String]
    /// Layers from this index up are always copied (an arriving container's delta: its files are the
    /// container's own, not shared image files).
    var copyFromLayer = Int.max
    /// A container tree this one replaces, whose own copies may be taken over (see `ReusableTree`).
    var reuse: ReusableTree?

    /// The read-mostly trees of an ostree-style split.
    public static let defaultLinkDirs = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"]

    public init(mode: MaterializeMode, linkDirs: [String] = MaterializePolicy.defaultLinkDirs) {
        self.mode = mode
        self.linkDirs = linkDirs
    }

    /// The link directories as relative normalised paths ("usr", "opt/x").
    var relativeLinkDirs: [String] {
        linkDirs.map { $0.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/") }
            .filter { !$0.isEmpty && !$0.split(separator: "/").contains("..") }
    }
}

/// The tree of a container being replaced by a new one made from the same image (a sync's update):
/// a regular file the new tree would copy from the store may be hardlinked from the old tree instead,
/// where neither container's delta names the path, and the old file is the old container's own copy
/// (one link) with the image entry's size, mtime and mode. The old tree is removed once the new one
/// is in place, so the taken-over file becomes the new container's own copy.
struct ReusableTree: Sendable, Equatable {
    /// The old container's ROOT.
    var root: String
    /// Paths (relative, as in layer.json) that either delta adds, changes or removes.
    var excluded: Set<String>
    /// Directories that either delta makes opaque: nothing under them is reused.
    var excludedDirectories: [String]

    func allows(_ path: String) -> Bool {
        if excluded.contains(path) { return false }
        for d in excludedDirectories where d.isEmpty || path.hasPrefix(d + "/") { return false }
        return true
    }
}

public final class Materializer: Sendable {
    public let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// What the tree needs from the layers' layer.json files (base first); a missing layer is an
    /// error naming it.
    func inputs(_ layers: [Digest]) throws -> [LayerTreeInput] {
        try layers.map { d in
            if let fast = LayerTreeInput.read(store.layout.layerManifest(d)) { return fast }
            let m: LayerManifest?
            do { m = try store.layer(diffID: d) } catch {
                throw RuntimeError.layerUnreadable(d.description, "\(error)")
            }
            guard let m else { throw RuntimeError.layerMissing(d.description) }
            return LayerTreeInput(m)
        }
    }

    /// Creates the merged tree of `layers` (base first, diff_ids of unpacked store layers) inside the
    /// existing empty directory `root`. Throws on the first failure; the caller removes `root`.
    public func materialize(layers: [Digest], into root: String, policy: MaterializePolicy) throws -> MaterializeReport {
        try materialize(layers: layers, into: root, policy: policy, workers: WalkThreads.default)
    }

    /// `materialize` with `workers` threads.
    func materialize(layers: [Digest], into root: String, policy: MaterializePolicy, workers: Int) throws -> MaterializeReport {
        let tree = MergedTree(layers: try inputs(layers))
        let run = try MaterializeRun(store: store, layers: layers, root: root, policy: policy, workers: workers)
        defer { run.close() }
        run.report.notes = tree.notes
        try run.populate(tree.root)
        return run.report
    }

    // MARK: breaking links

    /// Makes `path` (a regular file, possibly a hardlink to a store file) an independent, owner-writable
    /// copy with the same content, mode and mtime, replacing it by rename. Anything this tool itself
    /// changes inside a container must call this first. Returns false when `path` had only one link.
    @discardableResult
    public static func breakLink(_ path: String) throws -> Bool {
        let (parent, name) = MergedTree.split(path)
        let dirFD = open(parent.isEmpty ? "/" : parent, AtFile.oPath | O_DIRECTORY | O_CLOEXEC)
        if dirFD < 0 { throw RuntimeError.io("open", parent, errno) }
        defer { _ = close(dirFD) }
        let copier = FileCopier()
        return try breakLink(dirFD: dirFD, name: name, path: path, copier: copier, force: false)
    }

    /// `breakLink` relative to a directory descriptor. `force` copies even a file with one link.
    static func breakLink(dirFD: Int32, name: String, path: String, copier: FileCopier, force: Bool) throws -> Bool {
        let src = openat(dirFD, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if src < 0 { throw RuntimeError.io("open", path, errno) }
        defer { _ = close(src) }
        var st = stat()
        if fstat(src, &st) != 0 { throw RuntimeError.io("stat", path, errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw RuntimeError.io("copy", path, EINVAL) }
        if st.st_nlink <= 1 && !force { return false }
        let tmp = ".\(name.prefix(40)).udocker-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let mode = (st.st_mode & 0o7777) | 0o600
        let dst = openat(dirFD, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if dst < 0 { throw RuntimeError.io("create", FileIO.parent(of: path) + "/" + tmp, errno) }
        do {
            defer { _ = close(dst) }
            try copier.copy(from: src, to: dst, size: UInt64(st.st_size), path: path)
            if fchmod(dst, mode) != 0 { throw RuntimeError.io("chmod", path, errno) }
            AtFile.setMtime(fd: dst, st.st_mtim)
            if renameat(dirFD, tmp, dirFD, name) != 0 { throw RuntimeError.io("rename", path, errno) }
        } catch {
            _ = unlinkat(dirFD, tmp, 0)
            throw error
        }
        return true
    }
}

/// The state of one materialisation: the container's root, the policy, and a `ParallelWalk` whose
/// threads each take a directory, create its files, symlinks and FIFOs, and make its subdirectories,
/// which any thread may then fill (two threads make the links of a 20,000-file tree in about 60% of one
/// thread's time on ext4). Directory times are set at the end, once nothing more is created in them.
final class MaterializeRun: @unchecked Sendable {
    // @unchecked: the merged tree is only read while threads run; each thread has its own `Worker`.
    private let store: Store
    private let layers: [Digest]
    private let rootPath: String
    private let rootFD: Int32
    private let policy: MaterializePolicy
    private let linkPrefixes: [String]
    private let walk: ParallelWalk<Unit>
    private static let maxDepth = 256
    var report = MaterializeReport()

    struct InodeKey: Hashable {
        let layer: Int
        let inode: UInt64
    }

    /// A directory of the container to fill: it exists, `fd` is open on it (owned by the unit except for
    /// the root's).
    private struct Unit {
        let node: MergedNode
        let fd: Int32
        let path: String
        let linked: Bool
        let depth: Int
    }

    /// One thread's share, why the filesystem refused a link to the store, if it did, and the links
    /// it put off for the namespace children (sealed store).
    private final class Worker: TreeWorker {
        var refusedLinkErrno: Int32 = 0
        var deferred = DeferredLinks<MergedNode>()
        /// The directory of the replaced tree last looked in (`policy.reuse`); fd -1 where the old
        /// tree has no such directory, so it is not looked for again for each of its files.
        var reuseDir: (path: String, fd: Int32)?

        func closeReuseDir() {
            if let d = reuseDir, d.fd >= 0 { _ = Glibc.close(d.fd) }
            reuseDir = nil
        }
    }

    init(store: Store, layers: [Digest], root: String, policy: MaterializePolicy,
         workers: Int = WalkThreads.default) throws {
        self.store = store
        self.layers = layers
        rootPath = root
        self.policy = policy
        walk = ParallelWalk(threads: workers)
        linkPrefixes = policy.relativeLinkDirs
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root, errno) }
        rootFD = fd
        // Without the old tree nothing is reused: every file is made as usual.
        reuseRootFD = policy.reuse.map { open($0.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) } ?? -1
    }

    /// The replaced tree's ROOT (`policy.reuse`), or -1.
    private let reuseRootFD: Int32

    func close() {
        _ = Glibc.close(rootFD)
        if reuseRootFD >= 0 { _ = Glibc.close(reuseRootFD) }
    }

    /// Creates the children of the merged root, then gives ROOT the image's root metadata.
    func populate(_ root: MergedNode) throws {
        let workers = (0..<walk.threads).map { _ in Worker(store: store, layers: layers) }
        defer { for w in workers { w.sources.close(); w.closeReuseDir() } }
        // A copy-mode tree links nothing: no namespace to make.
        let session = policy.mode == .copy ? nil : DeferredLinks<MergedNode>.session(for: store)
        let rootFD = rootFD
        try walk.run([Unit(node: root, fd: rootFD, path: "", linked: policy.mode == .link || matchesLinkDir(""), depth: 0)],
                     fill: { unit, thread in
                         defer { if unit.fd != rootFD { _ = Glibc.close(unit.fd) } }
                         return try fill(unit, workers[thread])
                     },
                     discard: { unit in if unit.fd != rootFD { _ = Glibc.close(unit.fd) } })

        let nsLinked = try session.map { try makeDeferredLinks(workers, session: $0) } ?? 0
        try setDirectoryTimes(root, dirFD: rootFD, path: "", depth: 0)
        let treeNotes = report.notes
        report = TreeWorker.merged(workers)
        report.linked += nsLinked
        report.notes = treeNotes + report.notes
        let refused = workers.last { $0.refusedLinkErrno != 0 }?.refusedLinkErrno ?? 0
        if report.linkFallbacks > 0 {
            report.notes.append("\(report.linkFallbacks) file(s) copied instead of linked: the filesystem refused hardlinks to the store (\(String(cString: strerror(refused))))")
        }
        if let e = root.entry {
            _ = fchmod(rootFD, mode_t(e.mode & 0o7777) | 0o700)
            var times = AtFile.times(seconds: e.mtime)
            _ = futimens(rootFD, &times)
        }
    }

    private func matchesLinkDir(_ path: String) -> Bool {
        guard policy.mode == .auto, !path.isEmpty else { return false }
        for p in linkPrefixes where path == p || (path.hasPrefix(p) && path.utf8.count > p.utf8.count
                                                  && path.utf8[path.utf8.index(path.utf8.startIndex, offsetBy: p.utf8.count)] == 0x2F) {
            return true
        }
        return false
    }

    private func display(_ path: String) -> String { "/" + path }

    /// Creates the entries of one directory; returns its subdirectories, made and open.
    private func fill(_ unit: Unit, _ w: Worker) throws -> [Unit] {
        let (node, dirFD, path, linked, depth) = (unit.node, unit.fd, unit.path, unit.linked, unit.depth)
        var made: [Unit] = []
        do {
            for (name, child) in node.sortedChildren {
                let childPath = path.isEmpty ? name : path + "/" + name
                switch child.kind {
                case .directory:
                    if depth + 1 > MaterializeRun.maxDepth {
                        w.notes.append((childPath, "directory '\(display(childPath))' is nested deeper than \(MaterializeRun.maxDepth) levels; not created"))
                        continue
                    }
                    let mode = mode_t(child.mode & 0o7777) | 0o700
                    if mkdirat(dirFD, name, mode) != 0 { throw RuntimeError.io("mkdir", rootPath + "/" + childPath, errno) }
                    if mode & AtFile.umaskBits != 0 || mode & 0o7000 != 0 { _ = fchmodat(dirFD, name, mode, 0) }
                    let fd = AtFile.openDirectory(dirFD, name)
                    if fd < 0 { throw RuntimeError.io("open", rootPath + "/" + childPath, errno) }
                    w.report.directories += 1
                    made.append(Unit(node: child, fd: fd, path: childPath, linked: linked || matchesLinkDir(childPath),
                                     depth: depth + 1))
                case .file:
                    let link = (linked || matchesLinkDir(childPath)) && child.layer < policy.copyFromLayer
                    try createFile(child, name: name, dirFD: dirFD, parentPath: path, path: childPath, link: link, w)
                case .symlink:
                    guard let target = child.entry?.target, !target.isEmpty else {
                        w.notes.append((childPath, "symlink '\(display(childPath))' has no target; not created"))
                        continue
                    }
                    if symlinkat(target, dirFD, name) != 0 { throw RuntimeError.io("symlink", rootPath + "/" + childPath, errno) }
                    if let e = child.entry { AtFile.setMtime(dirFD, name, e.mtime) }
                    w.report.symlinks += 1
                case .fifo:
                    let mode = mode_t(child.mode & 0o7777) | 0o600
                    if mkfifoat(dirFD, name, mode) != 0 { throw RuntimeError.io("mkfifo", rootPath + "/" + childPath, errno) }
                    if mode & AtFile.umaskBits != 0 { _ = fchmodat(dirFD, name, mode, 0) }
                    if let e = child.entry { AtFile.setMtime(dirFD, name, e.mtime) }
                    w.report.fifos += 1
                case .device:
                    if childPath.hasPrefix("dev/") {
                        w.devices.append(display(childPath))
                    } else {
                        w.notes.append((childPath, "device node '\(display(childPath))' not created: udocker containers use the host's /dev"))
                    }
                }
            }
        } catch {
            for u in made { _ = Glibc.close(u.fd) }
            throw error
        }
        return made
    }

    /// Gives every directory made its image mtime, deepest first, once nothing more is created in them.
    private func setDirectoryTimes(_ node: MergedNode, dirFD: Int32, path: String, depth: Int) throws {
        for (name, child) in node.sortedChildren where child.kind == .directory && depth + 1 <= MaterializeRun.maxDepth {
            let childPath = path.isEmpty ? name : path + "/" + name
            let fd = AtFile.openDirectory(dirFD, name)
            if fd < 0 { throw RuntimeError.io("open", rootPath + "/" + childPath, errno) }
            do {
                defer { _ = Glibc.close(fd) }
                try setDirectoryTimes(child, dirFD: fd, path: childPath, depth: depth + 1)
            }
            if let e = child.entry { AtFile.setMtime(dirFD, name, e.mtime) }
        }
    }

    private func createFile(_ node: MergedNode, name: String, dirFD: Int32, parentPath: String, path: String, link: Bool,
                            _ w: Worker) throws {
        guard let e = node.entry else { return }
        let size = e.size
        let mode = Self.copyMode(e.mode)
        if size == 0 {
            // Empty files are never linked: a link would make every container share one inode for
            // files programs often write (lock files, logs).
            let fd = openat(dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            if fd < 0 { throw RuntimeError.io("create", rootPath + "/" + path, errno) }
            if mode & AtFile.umaskBits != 0 || mode & 0o7000 != 0 { _ = fchmod(fd, mode) }
            AtFile.setMtime(fd: fd, timespec(tv_sec: Int(e.mtime), tv_nsec: 0))
            _ = Glibc.close(fd)
            w.report.emptyFiles += 1
            return
        }
        if link, store.protection.owner != nil {
            w.deferred.add(layer: node.layer, dir: parentPath, name: name, node)
            return
        }
        let src = try w.sources.directory(node.layer, parentPath)
        if link {
            if linkat(src, name, dirFD, name, 0) == 0 {
                w.report.linked += 1
                return
            }
            try linkFailed(errno, layer: node.layer, entryPath: e.path, path: path, w)
        }
        if takeOver(e, name: name, dirFD: dirFD, parentPath: parentPath, path: path, mode: mode, w) { return }
        try copyFile(node, name: name, srcDir: src, dirFD: dirFD, path: path, mode: mode, w)
    }

    /// Hardlinks the replaced tree's copy of `path` here instead of copying the store's file, where
    /// `policy.reuse` allows the path and that copy is still what the image has (see `ReusableTree`).
    /// Its directory is opened beneath the old ROOT without following a symlink.
    private func takeOver(_ e: TreeEntry, name: String, dirFD: Int32, parentPath: String, path: String, mode: mode_t,
                          _ w: Worker) -> Bool {
        guard reuseRootFD >= 0, let reuse = policy.reuse, reuse.allows(path) else { return false }
        if w.reuseDir?.path != parentPath {
            w.closeReuseDir()
            w.reuseDir = (parentPath, AtFile.openBeneath(reuseRootFD, parentPath))
        }
        guard let old = w.reuseDir?.fd, old >= 0 else { return false }
        var st = stat()
        guard fstatat(old, name, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_nlink == 1,
              st.st_uid == getuid(), UInt64(st.st_size) == e.size, Int64(st.st_mtim.tv_sec) == e.mtime,
              mode_t(st.st_mode & 0o7777) == mode,
              linkat(old, name, dirFD, name, 0) == 0 else { return false }
        w.report.copied += 1
        return true
    }

    /// The mode of a container's own copy of a file: the image's, readable by its owner.
    private static func copyMode(_ imageMode: UInt32) -> mode_t { mode_t(imageMode & 0o7777) | 0o400 }

    /// A link the filesystem refused is counted (the caller copies the file instead); any other error
    /// stops the walk.
    private func linkFailed(_ err: Int32, layer: Int, entryPath: String, path: String, _ w: Worker) throws {
        guard linkRefused(err) else {
            if err == ENOENT {
                throw RuntimeError.storeLayerDamaged(layer: layers[layer].description, path: entryPath,
                                                     reason: "the file is missing")
            }
            throw RuntimeError.io("link", rootPath + "/" + path, err)
        }
        w.refusedLinkErrno = err
        w.report.linkFallbacks += 1
    }

    /// Makes the links the threads put off (sealed store) in namespace children; a refused one is
    /// copied, as `createFile` does. Returns how many were made.
    private func makeDeferredLinks(_ workers: [Worker], session: UserNamespace.Session) throws -> Int {
        let fallback = workers[0]
        return try DeferredLinks.make(workers.map(\.deferred), store: store, layers: layers, dstRootFD: rootFD,
                                      session: session) { batch, i, err in
            let node = batch.payloads[i], name = batch.names[i]
            let path = batch.dir.isEmpty ? name : batch.dir + "/" + name
            try linkFailed(err, layer: node.layer, entryPath: node.entry?.path ?? path, path: path, fallback)
            let dirFD = AtFile.openBeneath(rootFD, batch.dir)
            if dirFD < 0 { throw RuntimeError.io("open", rootPath + "/" + batch.dir, errno) }
            defer { _ = Glibc.close(dirFD) }
            let src = try fallback.sources.directory(node.layer, batch.dir)
            try copyFile(node, name: name, srcDir: src, dirFD: dirFD, path: path, mode: Self.copyMode(node.entry?.mode ?? 0), fallback)
        }
    }

    private func copyFile(_ node: MergedNode, name: String, srcDir: Int32, dirFD: Int32, path: String, mode: mode_t,
                          _ w: Worker) throws {
        guard let e = node.entry else { return }
        let src = openat(srcDir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if src < 0 {
            throw RuntimeError.storeLayerDamaged(layer: layers[node.layer].description, path: e.path,
                                                 reason: String(cString: strerror(errno)))
        }
        defer { _ = Glibc.close(src) }
        var st = stat()
        if fstat(src, &st) != 0 { throw RuntimeError.io("stat", store.linkRoot(layers[node.layer]) + "/" + e.path, errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw RuntimeError.storeLayerDamaged(layer: layers[node.layer].description, path: e.path,
                                                 reason: "not a regular file")
        }
        // A hardlink of the image: the container gets a hardlink to its first copy.
        let key = AnyHashable(InodeKey(layer: node.layer, inode: UInt64(st.st_ino)))
        let first = st.st_nlink > 1 ? walk.linkFirstCopy(of: key, rootFD: rootFD, into: dirFD, name) : .notLinked
        if first == .linked {
            w.report.hardlinks += 1
            return
        }
        var copied = false
        defer { if first == .yours { walk.copied(key, at: copied ? path : nil) } }
        let dst = openat(dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if dst < 0 { throw RuntimeError.io("create", rootPath + "/" + path, errno) }
        defer { _ = Glibc.close(dst) }
        try w.copier.copy(from: src, to: dst, size: UInt64(st.st_size), path: rootPath + "/" + path)
        if mode & AtFile.umaskBits != 0 || mode & 0o7000 != 0 {
            if fchmod(dst, mode) != 0 { throw RuntimeError.io("chmod", rootPath + "/" + path, errno) }
        }
        AtFile.setMtime(fd: dst, timespec(tv_sec: Int(e.mtime), tv_nsec: 0))
        copied = true
        w.report.copied += 1
    }
}

/// Descriptors of the store layers' directories: each layer's root, and per layer the directory last
/// asked for (materialisation walks one container directory at a time, so this hits almost always).
final class LayerDirCache {
    private let store: Store
    let layers: [Digest]
    private var rootFDs: [Int32]
    private var current: [(path: String, fd: Int32)?]

    init(store: Store, layers: [Digest]) {
        self.store = store
        self.layers = layers
        rootFDs = Array(repeating: -1, count: layers.count)
        current = Array(repeating: nil, count: layers.count)
    }

    func close() {
        for c in current { if let c { _ = Glibc.close(c.fd) } }
        current = Array(repeating: nil, count: layers.count)
        for fd in rootFDs where fd >= 0 { _ = Glibc.close(fd) }
        rootFDs = Array(repeating: -1, count: layers.count)
    }

    /// Directory `path` of layer `layer`, opened beneath the layer root without following symlinks.
    func directory(_ layer: Int, _ path: String) throws -> Int32 {
        if let c = current[layer], c.path == path { return c.fd }
        if rootFDs[layer] < 0 {
            let root = store.linkRoot(layers[layer])
            let fd = open(root, AtFile.oPath | O_DIRECTORY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.layerMissing(layers[layer].description) }
            rootFDs[layer] = fd
        }
        let fd = AtFile.openBeneath(rootFDs[layer], path)
        if fd < 0 {
            throw RuntimeError.storeLayerDamaged(layer: layers[layer].description, path: path,
                                                 reason: String(cString: strerror(errno)))
        }
        if let old = current[layer] { _ = Glibc.close(old.fd) }
        current[layer] = (path, fd)
        return fd
    }
}
