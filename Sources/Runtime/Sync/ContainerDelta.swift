// A container as it travels: what its ROOT changed against its image's merged tree, as one OCI layer
// (a zstd-compressed tar) stored as a blob, plus the metadata a receiver needs (SyncContainer).
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one prepare did, to show that an unchanged container is recognised without reading it.
public struct DeltaReport: Sendable, Equatable {
    /// Regular files whose content was hashed to compare with the image's per-file digest.
    public var filesHashed = 0
    public var bytesHashed: UInt64 = 0
    /// Whether the delta tar was written (false: the last one was reused from the stat cache).
    public var deltaWritten = false
    /// Entries of the delta: files, directories, links and whiteouts.
    public var entries = 0
    /// Regular files still the store's inode, skipped without reading.
    public var storeInodes = 0
    public init() {}
}

public enum ContainerDelta {
    /// OCI media type of a delta: a zstd tar. zstd, not gzip: libarchive's gzip writer puts the
    /// current time in the gzip header, which would give an unchanged container a new digest on every
    /// sync; zstd frames carry no time, and zstd compresses and decompresses several times faster.
    public static let mediaType = "application/vnd.oci.image.layer.v1.tar+zstd"

    /// The delta of container `container` (id or name) of `repository`, stored as a blob in its store
    /// and held there by the ref `deltaHolder`. Never changes the container.
    public static func prepare(repository: Repository, container: String) throws -> SyncContainer {
        try prepareReporting(repository: repository, container: container).container
    }

    /// `prepare`, with what it did.
    public static func prepareReporting(repository: Repository, container: String) throws -> (container: SyncContainer, report: DeltaReport) {
        let store = try repository.openStore()
        let containers = try ContainerStore(repository: repository, store: store)
        let id = try containers.usable(container)
        let info = try containers.require(id)
        guard let image = try containers.images.image(named: info.image) else {
            throw RuntimeError.syncContainerImageMissing(container: container, image: info.image)
        }
        let mat = containers.materializeInfo(id)
        let layers = image.record.layers.map(\.diffID)
        let source = containers.execMode(id) ?? ContainerStore.defaultExecMode
        var cache = DeltaCache.load(repository, id: id)
        let view = try ModeConversion.view(containerDir: containers.directory(id), execmode: source, cache: cache,
                                           convertDir: DeltaCache.directory(repository) + "/convert")
        let base = ([source] + layers.map(\.hex)).joined(separator: ",")
        if cache.base != base { cache = DeltaCache(base: base) }
        // Taken before anything is read, so a change made while the delta is written is seen next time.
        let signature = try quickSignature(root: info.root, view: view)
        var report = DeltaReport()
        report.filesHashed = view.filesHashed
        let delta: SyncObject
        if let last = cache.delta, cache.signature == signature, store.hasBlob(last.digest) {
            delta = last
            if view.filesHashed > 0 {
                cache.patched = view.hashed
                cache.save(repository, id: id, withFiles: false)
            }
        } else {
            cache.loadFiles(repository, id: id)
            let w = try DeltaWalk(store: store, layers: layers, root: info.root, view: view, cache: cache)
            try w.run()
            try w.decideContents()
            report = w.report
            report.filesHashed += view.filesHashed
            delta = try write(w, store: store, repository: repository, id: id)
            report.deltaWritten = true
            report.entries = w.entryCount
            DeltaCache(base: base, signature: signature, delta: delta, patched: view.hashed, files: w.hashed)
                .save(repository, id: id, withFiles: true)
        }
        try ContainerStore.io { try store.setRef(holder: deltaHolder(containers, id), digests: [delta.digest]) }

        let json = Data(try containers.configJSON(id))
        let sync = SyncContainer(id: id, names: info.names, image: info.image, imageManifest: image.record.manifestDigest,
                                 delta: delta, containerJSON: json, materialize: mat?.mode ?? MaterializeMode.copy.rawValue,
                                 execmode: ModeConversion.arrivalMode(source), protected: info.isProtected)
        var withDirs = sync
        if mat?.mode == MaterializeMode.auto.rawValue { withDirs.linkDirs = mat?.linkDirs }
        return (withDirs, report)
    }

    /// After an arrival: the tree just made from the image and `delta` is what `delta` describes, so
    /// the stat cache records `delta` with the tree's signature, and the next prepare here (the
    /// receiver's check of a second sync) is one stat walk instead of a walk that hashes every copied
    /// file. A setup on arrival moves the signature, so nothing stale is ever reused.
    static func recordArrival(repository: Repository, containers: ContainerStore, id: String, delta: SyncObject) {
        DeltaCache.remove(repository, id: id)
        guard let info = try? containers.require(id), let image = (try? containers.images.image(named: info.image)) ?? nil else { return }
        let source = containers.execMode(id) ?? ContainerStore.defaultExecMode
        guard let view = try? ModeConversion.view(containerDir: containers.directory(id), execmode: source, cache: DeltaCache(),
                                                  convertDir: DeltaCache.directory(repository) + "/convert"),
              let signature = try? quickSignature(root: info.root, view: view) else { return }
        let base = ([source] + image.record.layers.map(\.diffID.hex)).joined(separator: ",")
        try? containers.store.setRef(holder: deltaHolder(containers, id), digests: [delta.digest])
        DeltaCache(base: base, signature: signature, delta: delta, patched: view.hashed).save(repository, id: id, withFiles: false)
    }

    /// A digest of every path of ROOT with its type and stat (the view's hidden entries left out):
    /// when it is what the last prepare recorded, the container did not change and its delta is
    /// reused without reading a file. A file with several links (a store file in link and auto mode)
    /// counts without its ctime, which another container's link to the same store file moves; its
    /// content is the store's (read-only), or the user's with its mtime and size.
    static func quickSignature(root: String, view: ModeConversion.View) throws -> String {
        let h = try SHA256Hasher()
        var buf: [UInt8] = []
        buf.reserveCapacity(512)
        func note(_ path: String, _ st: stat) {
            buf.removeAll(keepingCapacity: true)
            buf.append(contentsOf: path.utf8)
            let kind = st.st_mode & S_IFMT
            var fields: [Int64] = [Int64(st.st_mode), Int64(st.st_size), Int64(st.st_mtim.tv_sec), Int64(st.st_mtim.tv_nsec),
                                   Int64(bitPattern: UInt64(st.st_ino))]
            if kind != S_IFDIR && !(kind == S_IFREG && st.st_nlink > 1) {
                fields += [Int64(st.st_ctim.tv_sec), Int64(st.st_ctim.tv_nsec)]
            }
            for var f in fields { withUnsafeBytes(of: &f) { buf.append(contentsOf: $0) } }
            buf.append(10)
            h.update(buf)
        }
        func walk(_ fd: Int32, _ path: String, depth: Int) throws {
            guard depth <= 256 else { return }
            let hidden = view.hidden(in: path)
            for e in try AtFile.list(fd, path: root + "/" + path).sorted(by: { $0.name < $1.name }) where !hidden.contains(e.name) {
                let p = path.isEmpty ? e.name : path + "/" + e.name
                var st = stat()
                guard fstatat(fd, e.name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                note(p, st)
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    let sub = AtFile.openDirectory(fd, e.name)
                    if sub < 0 { throw RuntimeError.io("open", root + "/" + p, errno) }
                    defer { _ = close(sub) }
                    try walk(sub, p, depth: depth + 1)
                }
            }
        }
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root, errno) }
        defer { _ = close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 { note("", st) }
        try walk(fd, "", depth: 0)
        h.update(Array(view.version.utf8))
        return h.finish().hex
    }

    /// The store holder keeping a container's last delta blob (released with the container).
    static func deltaHolder(_ containers: ContainerStore, _ id: String) -> String { containers.holder(id) + "/delta" }

    /// Forgets what prepare kept for a removed container: its delta ref and stat cache.
    static func forget(_ containers: ContainerStore, id: String) {
        // Most containers never travel: no release (and its GC lock) for them.
        if (try? containers.store.ref(holder: deltaHolder(containers, id))) ?? nil != nil {
            _ = try? containers.store.release(holder: deltaHolder(containers, id))
        }
        DeltaCache.remove(containers.repository, id: id)
    }

    /// Writes the delta tar of `walk` into the store (a temp file in REPO/sync, ingested, removed).
    private static func write(_ walk: DeltaWalk, store: Store, repository: Repository, id: String) throws -> SyncObject {
        let dir = DeltaCache.directory(repository)
        try ContainerStore.io { try FileIO.mkdirs(dir, mode: 0o700) }
        sweepTemps(dir)
        let tmp = dir + "/.tmp.\(id).\(ProcessIdentity.pid)@\(ProcessIdentity.host).tar.zst"
        let fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw RuntimeError.io("create", tmp, errno) }
        defer { _ = close(fd); _ = unlink(tmp) }
        do {
            let w = try ArchiveWriter(fd: fd, destination: tmp, zstd: true)
            try walk.emit(into: w)
            try w.finish()
        }
        // kill -9 tests: the delta is written but not stored.
        Failpoint.hit("container-delta-before-store")
        if lseek(fd, 0, SEEK_SET) != 0 { throw RuntimeError.io("seek", tmp, errno) }
        let rec = try ContainerStore.io { try store.ingest(fd: fd, mediaType: mediaType) }
        return SyncObject(digest: rec.digest, size: Int64(rec.size), mediaType: mediaType)
    }

    /// Removes temp deltas of processes that are gone.
    private static func sweepTemps(_ dir: String) {
        guard let names = try? FileIO.listDirectory(dir) else { return }
        for n in names where n.hasPrefix(".tmp.") {
            guard let at = n.lastIndex(of: "@"), let dot = n[..<at].lastIndex(of: "."),
                  let pid = Int32(n[n.index(after: dot)..<at]) else { continue }
            let host = n[n.index(after: at)...].split(separator: ".").first.map(String.init) ?? ""
            if ProcessIdentity.isDead(host: host, pid: pid) { _ = unlink(dir + "/" + n) }
        }
    }
}

/// The walk of a container's ROOT against its image's merged tree. `run` stats every entry (and the
/// store file of the same path); `decideContents` settles, by
/// content digest, whether copied files equal the image's; `emit` writes the delta in walk order
/// (directories before their entries, names sorted), so the same tree always gives the same bytes.
final class DeltaWalk {
    enum Kind: Equatable {
        case directory, file, symlink(String), fifo, whiteout
    }

    struct Entry {
        var path: String
        var kind: Kind
        var mode: mode_t
        var mtime: Int64
        var size: Int64
        /// Regular files with several links: the inode, so hardlinked paths travel as hardlinks.
        var inode: UInt64?
        /// A copied file whose metadata equals the image's: in the delta only if its content differs
        /// (`digestOf` says where the image's digest is) or another path of its inode changed.
        var maybe: Bool = false
        var imageLayer: Int?
        var stat: StatKey?
        /// Where the content is read from (ROOT-relative; for converted files, an absolute path).
        var source: String
    }

    private let store: Store
    private let layers: [Digest]
    private let root: String
    private let tree: MergedTree
    private let view: ModeConversion.View
    private let cache: DeltaCache
    private let rootFD: Int32
    private(set) var entries: [Entry] = []
    private(set) var report = DeltaReport()
    /// Digests of the files hashed or taken from the cache, for the next cache.
    private(set) var hashed: [String: DeltaCache.FileDigest] = [:]
    private var layerStats: [Int: (dev: UInt64, roots: String)] = [:]
    private static let maxDepth = 256

    var entryCount: Int { entries.filter { !$0.maybe }.count }

    init(store: Store, layers: [Digest], root: String, view: ModeConversion.View, cache: DeltaCache) throws {
        self.store = store
        self.layers = layers
        self.root = root
        self.view = view
        self.cache = cache
        tree = MergedTree(layers: try Materializer(store: store).inputs(layers))
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root, errno) }
        rootFD = fd
    }

    deinit { _ = close(rootFD) }

    func run() throws {
        var st = stat()
        if fstat(rootFD, &st) != 0 { throw RuntimeError.io("stat", root, errno) }
        let at = directory("", st, node: tree.root)
        if try walk(rootFD, "", tree.root, depth: 0) { keepImageTime(at, node: tree.root) }
    }

    /// Records directory `path` when it is not the image's (kind, mode as materialised, mtime);
    /// returns the index of its entry.
    @discardableResult
    private func directory(_ path: String, _ st: stat, node: MergedNode?) -> Int? {
        let mode = st.st_mode & 0o7777
        if let node, node.kind == .directory, let e = node.entry, (mode_t(e.mode & 0o7777) | 0o700) == mode,
           e.mtime == Int64(st.st_mtim.tv_sec), st.st_mtim.tv_nsec == 0 { return nil }
        entries.append(Entry(path: path, kind: .directory, mode: mode, mtime: Int64(st.st_mtim.tv_sec), size: 0, source: path))
        return entries.count - 1
    }

    /// A directory whose mtime moved only because setup (patched files renamed in, runc's mount
    /// points) changed its entries travels with the image's time, when its mode is the image's.
    private func keepImageTime(_ index: Int?, node: MergedNode?) {
        guard let index, let e = node?.entry, node?.kind == .directory,
              (mode_t(e.mode & 0o7777) | 0o700) == entries[index].mode else { return }
        entries[index].maybe = true
        entries[index].kind = .directory
        entries[index].inode = nil
        entries[index].imageLayer = nil
    }

    /// Walks one directory; returns whether setup changed its entries (what `keepImageTime` undoes).
    private func walk(_ dirFD: Int32, _ path: String, _ node: MergedNode?, depth: Int) throws -> Bool {
        let listed = try AtFile.list(dirFD, path: root + "/" + path)
        var names = Set(listed.map(\.name))
        var touched = false
        for n in view.hidden(in: path) where names.remove(n) != nil { touched = true }
        // Whiteouts for what the image has and the container does not (never-created devices aside).
        var items: [(name: String, whiteout: Bool)] = names.map { ($0, false) }
        // A Fakechroot volume link over an empty directory: the directory travels.
        var emptyDirs: [String: mode_t] = [:]
        for n in view.hidden(in: path) {
            let p = path.isEmpty ? n : path + "/" + n
            if let m = view.emptyDirs[p] { emptyDirs[n] = m; names.insert(n); items.append((n, false)) }
        }
        if let node, node.kind == .directory {
            for (name, child) in node.children where !names.contains(name) {
                if child.kind == .device { continue }
                if child.kind == .symlink, (child.entry?.target ?? "").isEmpty { continue }
                items.append((".wh." + name, true))
            }
        }
        items.sort { $0.name < $1.name }
        for item in items {
            let name = item.name
            let childPath = path.isEmpty ? name : path + "/" + name
            if item.whiteout {
                entries.append(Entry(path: childPath, kind: .whiteout, mode: 0, mtime: 0, size: 0, source: ""))
                continue
            }
            let child = node?.kind == .directory ? node?.children[name] : nil
            if let m = emptyDirs[name] {
                var st = stat()
                st.st_mode = S_IFDIR | m
                st.st_mtim = timespec(tv_sec: Int(child?.entry?.mtime ?? 0), tv_nsec: 0)
                directory(childPath, st, node: child?.kind == .directory ? child : nil)
                continue
            }
            if let replaced = view.replacement(childPath) {
                touched = true
                try file(childPath, replaced.stat, child: child, source: replaced.source)
                continue
            }
            var st = stat()
            if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { continue }
                throw RuntimeError.io("stat", root + "/" + childPath, errno)
            }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                guard depth + 1 <= Self.maxDepth else { continue }
                let sub = child?.kind == .directory ? child : nil
                let at = directory(childPath, st, node: sub)
                let fd = AtFile.openDirectory(dirFD, name)
                if fd < 0 { throw RuntimeError.io("open", root + "/" + childPath, errno) }
                defer { _ = close(fd) }
                if child == nil, view.isSetupArtifact(childPath), try AtFile.list(fd, path: root + "/" + childPath).isEmpty {
                    // A mount point runc made: not the container's.
                    if let at { entries.remove(at: at) }
                    touched = true
                    continue
                }
                if try walk(fd, childPath, sub, depth: depth + 1) { keepImageTime(at, node: sub) }
            case S_IFREG:
                if child == nil, st.st_size == 0, view.isSetupArtifact(childPath) {
                    touched = true
                    continue
                }
                try file(childPath, st, child: child, source: childPath)
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlinkat(dirFD, name, &buf, buf.count - 1)
                if n < 0 { throw RuntimeError.io("readlink", root + "/" + childPath, errno) }
                let target = view.symlinkTarget(childPath) ?? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if let child, child.kind == .symlink, let e = child.entry, e.target == target,
                   e.mtime == Int64(st.st_mtim.tv_sec), st.st_mtim.tv_nsec == 0 { continue }
                entries.append(Entry(path: childPath, kind: .symlink(target), mode: 0o777, mtime: Int64(st.st_mtim.tv_sec),
                                     size: 0, source: childPath))
            case S_IFIFO:
                let mode = st.st_mode & 0o7777
                if let child, child.kind == .fifo, let e = child.entry, (mode_t(e.mode & 0o7777) | 0o600) == mode,
                   e.mtime == Int64(st.st_mtim.tv_sec), st.st_mtim.tv_nsec == 0 { continue }
                entries.append(Entry(path: childPath, kind: .fifo, mode: mode, mtime: Int64(st.st_mtim.tv_sec), size: 0, source: childPath))
            default:
                // Devices and sockets are never made in a container by us, and do not travel.
                continue
            }
        }
        return touched
    }

    /// A regular file: unchanged when it is still the store's inode for this path (no read), or
    /// possibly unchanged when its metadata is the image's (content checked in `decideContents`).
    private func file(_ path: String, _ st: stat, child: MergedNode?, source: String) throws {
        let mode = st.st_mode & 0o7777
        if let child, child.kind == .file, child.layer >= 0, isStoreInode(path, layer: child.layer, st) {
            report.storeInodes += 1
            return
        }
        let key = StatKey(st)
        var e = Entry(path: path, kind: .file, mode: mode, mtime: Int64(st.st_mtim.tv_sec), size: Int64(st.st_size),
                      inode: st.st_nlink > 1 ? UInt64(st.st_ino) : nil, stat: key, source: source)
        if let child, child.kind == .file, let ie = child.entry, child.layer >= 0,
           (mode_t(ie.mode & 0o7777) | 0o400) == mode, ie.mtime == Int64(st.st_mtim.tv_sec), st.st_mtim.tv_nsec == 0,
           ie.size == UInt64(st.st_size) {
            // The image's digest is looked up in `decideContents`.
            e.maybe = true
            e.imageLayer = child.layer
        }
        entries.append(e)
    }

    private func isStoreInode(_ path: String, layer: Int, _ st: stat) -> Bool {
        guard st.st_nlink > 1 else { return false }
        var s = stat()
        return lstat(store.linkRoot(layers[layer]) + "/" + path, &s) == 0 && s.st_ino == st.st_ino && s.st_dev == st.st_dev
    }

    /// Hashes (or takes from the cache) the possibly unchanged files: equal to the image's digest,
    /// they leave the delta, unless another path of their inode is in it.
    func decideContents() throws {
        let now = Int64(time(nil))
        for i in entries.indices where entries[i].maybe || entries[i].kind == .file {
            guard let key = entries[i].stat else { continue }
            let path = entries[i].path
            guard entries[i].maybe, let layer = entries[i].imageLayer else { continue }
            guard let want = try store.fileDigest(layer: layers[layer], path: path)?.digest else {
                entries[i].maybe = false
                continue
            }
            let have: Digest
            if let d = cache.digest(path, key) {
                have = d
            } else {
                let (d, n) = try hash(entries[i].source)
                report.filesHashed += 1
                report.bytesHashed += n
                have = d
            }
            // Racy-clean: a file changed in the second it was hashed may change again unseen.
            if key.mtime < now && key.ctime < now { hashed[path] = DeltaCache.FileDigest(stat: key, digest: have) }
            if have != want { entries[i].maybe = false }
        }
        // Inodes with any path in the delta take all their paths along, so hardlinks stay hardlinks.
        var changedInodes = Set<UInt64>()
        for e in entries where !e.maybe { if let ino = e.inode { changedInodes.insert(ino) } }
        for i in entries.indices where entries[i].maybe {
            if let ino = entries[i].inode, changedInodes.contains(ino) { entries[i].maybe = false }
        }
    }

    private func hash(_ source: String) throws -> (Digest, UInt64) {
        let fd = try openSource(source)
        defer { _ = close(fd) }
        return try SHA256Hasher.hash(fd: fd, path: displayPath(source))
    }

    private func displayPath(_ source: String) -> String { source.hasPrefix("/") ? source : root + "/" + source }

    /// Opens a file of ROOT beneath it without following symlinks (or an absolute source as is).
    private func openSource(_ source: String) throws -> Int32 {
        if source.hasPrefix("/") {
            let fd = Glibc.open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.io("open", source, errno) }
            return fd
        }
        let (parent, name) = MergedTree.split(source)
        let dir = AtFile.openBeneath(rootFD, parent)
        if dir < 0 { throw RuntimeError.io("open", root + "/" + parent, errno) }
        defer { _ = close(dir) }
        let fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root + "/" + source, errno) }
        return fd
    }

    /// Writes the entries that are in the delta. Owners are root (the delta says what the files are,
    /// not who unpacked them), times whole seconds.
    func emit(into w: ArchiveWriter) throws {
        var firstOfInode = [UInt64: String]()
        for e in entries where !e.maybe {
            let name = e.path.isEmpty ? "./" : e.path
            let mtime = timespec(tv_sec: Int(e.mtime), tv_nsec: 0)
            switch e.kind {
            case .directory:
                try w.directory(name, perm: e.mode, owner: .init(), mtime: mtime)
            case .whiteout:
                try w.file(e.path, perm: 0o600, owner: .init(), mtime: timespec(), size: 0) { _ in }
            case .symlink(let target):
                try w.symlink(name, target: target, owner: .init(), mtime: mtime)
            case .fifo:
                try w.special(name, type: S_IFIFO, perm: e.mode, owner: .init(), mtime: mtime, rdev: 0)
            case .file:
                if let ino = e.inode {
                    if let first = firstOfInode[ino] {
                        try w.hardlink(name, target: first, perm: e.mode, owner: .init(), mtime: mtime)
                        continue
                    }
                    firstOfInode[ino] = name
                }
                let fd = try openSource(e.source)
                defer { _ = close(fd) }
                try w.file(name, perm: e.mode, owner: .init(), mtime: mtime, size: e.size, fd: fd, source: displayPath(e.source))
            }
        }
    }
}
