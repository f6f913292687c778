// The containers of one repository in udocker 1.3's layout: containers/<id>/{ROOT, container.json,
// imagerepo.name, execmode, PROTECT}, names as symlinks containers/<name> -> <id>, plus our
// materialize.json; and the store ref each container holds ("repo/<repo id>/container/<id>").
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One container of the repository.
public struct ContainerInfo: Sendable, Equatable {
    /// The container id (a uuid, as udocker makes them).
    public var id: String
    /// REPO/containers/<id>
    public var directory: String
    /// Names (symlinks in containers/) pointing to it, sorted.
    public var names: [String]
    /// imagerepo.name: the image it was created from, "name:tag".
    public var image: String
    public var isProtected: Bool

    public var root: String { directory + "/ROOT" }

    /// Whether the container's file at `path` (relative to ROOT) is the inode (`device`, `inode`): a
    /// store file it is still linked to.
    public func links(_ path: String, device: UInt64, inode: UInt64) -> Bool {
        var st = stat()
        return lstat(root + "/" + path, &st) == 0 && UInt64(st.st_ino) == inode && UInt64(st.st_dev) == device
    }
}

/// materialize.json: how the container's ROOT was made, so clone and later commands know which files
/// may be hardlinks to the store.
public struct MaterializeInfo: Codable, Sendable, Equatable {
    public static let fileName = "materialize.json"
    public var format: Int
    public var mode: String
    /// The link directories `auto` used (empty for link and copy).
    public var linkDirs: [String]
    /// The image's unpacked layers (diff_ids), base first.
    public var layers: [Digest]
    public var created: String
    public var linked: Int
    public var copied: Int
    /// "sealed" when every layer the container links to was sealed at create (no run can change the
    /// store's files), "detect" when runs must be checked afterwards; absent in older containers (detect).
    public var protection: String?

    public static let sealed = "sealed"
    public static let detect = "detect"

    /// Whether a run of this container must be checked for changed store files afterwards.
    public var needsRunCheck: Bool { protection != Self.sealed && mode != MaterializeMode.copy.rawValue }

    /// Whether the container's links are sealed store files: sealed at create, or every layer sealed
    /// since (a later create seals older layers in place, and the links are those inodes).
    public func linksSealedFiles(store: StoreLayout) -> Bool {
        guard mode != MaterializeMode.copy.rawValue else { return false }
        return protection == Self.sealed || (!layers.isEmpty && layers.allSatisfy { FileIO.exists(store.linkSealFile($0)) })
    }

    /// materialize.json as JSONDecoder would read it (read by hand: every run reads it, see SmallJSON).
    init?(json bytes: [UInt8]) {
        guard let o = SmallJSON.parse(bytes), let format = o["format"]?.int, let mode = o["mode"]?.string,
              let linkDirs = o["linkDirs"]?.strings, let layerTexts = o["layers"]?.strings,
              let created = o["created"]?.string, let linked = o["linked"]?.int, let copied = o["copied"]?.int else { return nil }
        var layers: [Digest] = []
        for t in layerTexts {
            guard let d = try? Digest(parsing: t) else { return nil }
            layers.append(d)
        }
        let protection: String?
        switch o["protection"] {
        case nil, .null?: protection = nil
        case .string(let p)?: protection = p
        default: return nil
        }
        self.format = format; self.mode = mode; self.linkDirs = linkDirs; self.layers = layers
        self.created = created; self.linked = linked; self.copied = copied; self.protection = protection
    }

    public init(mode: MaterializeMode, linkDirs: [String], layers: [Digest], report: MaterializeReport,
                sealed: Bool = false, created: Date = Date()) {
        format = 1
        self.mode = mode.rawValue
        self.linkDirs = mode == .auto ? linkDirs : []
        self.layers = layers
        self.created = Timestamp.utc(created)
        linked = report.linked
        copied = report.copied
        protection = sealed ? Self.sealed : Self.detect
    }
}

/// What `create` or `clone` made.
public struct ContainerCreation: Sendable, Equatable {
    public var id: String
    public var report: MaterializeReport
    /// Set when the name asked for was kept by another container (create --force), for the user.
    public var nameNotSet: String?
}

public final class ContainerStore: Sendable {
    public let repository: Repository
    public let store: Store
    public let repositoryID: String
    public let images: ImageStore

    public static let rootDir = "ROOT"
    public static let configFile = "container.json"
    public static let imageFile = "imagerepo.name"
    public static let execModeFile = "execmode"
    public static let protectFile = "PROTECT"
    /// The execution mode written at create (udocker's default on x86_64 and arm64).
    public static let defaultExecMode = "P1"

    /// `images` must be of the same repository; see `imageStore(repository:store:)` for one whose
    /// `remove` names the containers that keep an image's layers.
    public init(images: ImageStore) {
        self.images = images
        repository = images.repository
        store = images.store
        repositoryID = images.repositoryID
    }

    /// Opens the image and container stores of a repository.
    public convenience init(repository: Repository, store: Store) throws {
        self.init(images: try ContainerStore.imageStore(repository: repository, store: store))
    }

    /// An ImageStore whose `remove` reports the containers created from the image (by first name,
    /// else id).
    public static func imageStore(repository: Repository, store: Store) throws -> ImageStore {
        let dir = repository.containersdir
        return try ImageStore(repository: repository, store: store) { name in
            try ContainerStore.list(containersdir: dir).filter { $0.image == name.description }.map { $0.names.first ?? $0.id }
        }
    }

    /// The store holder of a container of this repository.
    public func holder(_ id: String) -> String { "repo/\(repositoryID)/container/\(id)" }

    public var containersdir: String { repository.containersdir }

    public func directory(_ id: String) -> String { containersdir + "/" + id }

    // MARK: reading

    /// Every container, sorted by id.
    public func containers() throws -> [ContainerInfo] {
        try ContainerStore.list(containersdir: containersdir)
    }

    static func list(containersdir: String) throws -> [ContainerInfo] {
        let entries = try io { try FileIO.listDirectory(containersdir) }
        var names = [String: [String]]()
        var ids = [String]()
        for e in entries where !e.hasPrefix(".") {
            let p = containersdir + "/" + e
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                if let target = readLink(p) { names[FileIO.basename(of: target), default: []].append(e) }
            case S_IFDIR:
                ids.append(e)
            default:
                continue
            }
        }
        return ids.sorted().map { id in
            let dir = containersdir + "/" + id
            return ContainerInfo(id: id, directory: dir, names: (names[id] ?? []).sorted(),
                                 image: readText(dir + "/" + imageFile) ?? "",
                                 isProtected: FileIO.exists(dir + "/" + protectFile))
        }
    }

    /// The container id an id or name refers to (udocker's get_container_id), or nil.
    public func resolve(_ idOrName: String) -> String? {
        Self.resolve(idOrName, containersdir: containersdir)
    }

    /// `resolve` without opening the store (for `run`, which must start fast).
    public static func resolve(_ idOrName: String, containersdir: String) -> String? {
        guard !idOrName.isEmpty, !idOrName.contains("/"), !idOrName.hasPrefix("."), !idOrName.utf8.contains(0) else { return nil }
        let p = containersdir + "/" + idOrName
        var st = stat()
        guard lstat(p, &st) == 0 else { return nil }
        if (st.st_mode & S_IFMT) == S_IFDIR { return idOrName }
        guard (st.st_mode & S_IFMT) == S_IFLNK, let target = readLink(p) else { return nil }
        let id = FileIO.basename(of: target)
        guard !id.isEmpty, !id.hasPrefix("."), lstat(containersdir + "/" + id, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        return id
    }

    /// The names (symlinks in containersdir) that point at container `id`.
    public static func names(of id: String, containersdir: String) -> [String] {
        guard let entries = try? FileIO.listDirectory(containersdir) else { return [] }
        return entries.filter { e in
            guard !e.hasPrefix("."), e != id else { return false }
            return readLink(containersdir + "/" + e).map { FileIO.basename(of: $0) } == id
        }.sorted()
    }

    /// The id of container `idOrName` when its directory is safe to use: ROOT a directory and no
    /// symbolic link outside it (ContainerDirectoryCheck); else containerNotFound or badContainer.
    public func usable(_ idOrName: String) throws -> String {
        guard let id = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        try ContainerDirectoryCheck.check(directory(id))
        return id
    }

    /// The container or RuntimeError.containerNotFound.
    public func require(_ idOrName: String) throws -> ContainerInfo {
        guard let id = resolve(idOrName), let c = try containers().first(where: { $0.id == id }) else {
            throw RuntimeError.containerNotFound(idOrName)
        }
        return c
    }

    /// container.json as stored (the image config).
    public func configJSON(_ id: String) throws -> [UInt8] {
        let p = directory(id) + "/" + Self.configFile
        guard FileIO.exists(p) else { throw RuntimeError.badContainer(path: directory(id), reason: "no container.json") }
        return try BeneathFiles.read(p, beneath: directory(id))
    }

    /// The execution mode recorded in the container (execmode), or nil when none is.
    public func execMode(_ id: String) -> String? {
        guard let t = Self.readText(directory(id) + "/" + Self.execModeFile) else { return nil }
        let m = t.trimmingCharacters(in: .whitespacesAndNewlines)
        return m.isEmpty ? nil : m
    }

    public func materializeInfo(_ id: String) -> MaterializeInfo? {
        Self.materializeInfo(directory: directory(id))
    }

    /// materialize.json of the container directory `dir`, or nil.
    public static func materializeInfo(directory dir: String) -> MaterializeInfo? {
        guard let bytes = try? BeneathFiles.read(dir + "/" + MaterializeInfo.fileName, beneath: dir) else { return nil }
        return MaterializeInfo(json: bytes)
    }

    /// Disk used by the container's ROOT: its own files and those it shares with the store. Nil
    /// when it has no ROOT directory.
    public func diskUsage(_ id: String) -> DiskUsage? {
        ContainerTree.usage(directory(id) + "/" + Self.rootDir)
    }

    // MARK: creating

    /// Creates a container from an image of this repository.
    public func create(from image: LocalImage, name: String?, force: Bool, policy: MaterializePolicy) throws -> ContainerCreation {
        try create(from: image.record, imageName: image.name.description, name: name, force: force, policy: policy)
    }

    /// Creates a container from an image record whose config blob and unpacked layers are in the store
    /// (an image of the repository, or one just imported). With `name`: refused when the name is taken,
    /// unless `force`, in which case the container is made without it (udocker 1.3's behaviour) and
    /// `nameNotSet` says so. Any failure removes what was made and says why.
    public func create(from record: ImageRecord, imageName: String, name: String?, force: Bool,
                       policy: MaterializePolicy) throws -> ContainerCreation {
        var nameNotSet: String? = nil
        if let name {
            try Self.validateName(name)
            if resolve(name) != nil {
                if !force { throw RuntimeError.containerNameExists(name) }
                nameNotSet = name
            }
        }
        let config = try Self.io { try FileIO.readFile(store.blobPath(record.configDigest)) }
        guard let containerJSON = PythonJSON.dump(config) else {
            throw RuntimeError.badImageRecord(path: store.blobPath(record.configDigest), reason: "the image config is not JSON")
        }
        let diffIDs = record.layers.map(\.diffID)
        let holds = Array(Set(record.layers.flatMap { [$0.digest, $0.diffID] })).sorted()
        let (id, tmp) = try newContainerDirectory()
        do {
            try Self.io { try store.setRef(holder: holder(id), digests: holds) }
            try Self.writeFile(tmp + "/" + Self.configFile, containerJSON)
            try Self.writeFile(tmp + "/" + Self.imageFile, Array(imageName.utf8))
            try Self.writeFile(tmp + "/" + Self.execModeFile, Array(Self.defaultExecMode.utf8))
            let unsealed = policy.mode == .copy ? [] : store.prepareLinkTrees(diffIDs)
            var report = try Materializer(store: store).materialize(layers: diffIDs, into: tmp + "/" + Self.rootDir, policy: policy)
            report.notes += Self.notes(unsealed)
            let info = MaterializeInfo(mode: policy.mode, linkDirs: policy.linkDirs, layers: diffIDs, report: report,
                                       sealed: store.protection.owner != nil && unsealed.isEmpty)
            try Self.writeFile(tmp + "/" + MaterializeInfo.fileName, try Self.encode(info))
            try adoptDirectory(id: id, temp: tmp)
            if let name, nameNotSet == nil {
                do { try setName(id, name) } catch RuntimeError.containerNameExists(let n) where force {
                    nameNotSet = n
                }
            }
            return ContainerCreation(id: id, report: report, nameNotSet: nameNotSet)
        } catch {
            discard(id: id, temp: tmp)
            throw RuntimeError.createFailed(what: "creating a container from \(imageName)", reason: Self.reason(error))
        }
    }

    /// A new container id and an empty directory (with ROOT) inside containers/ where it is built;
    /// hidden from `ps` until `adopt` renames it into place. For importers: fill it, then call `adopt`.
    public func newContainerDirectory() throws -> (id: String, directory: String) {
        sweepAbandoned()
        let id = UUID().uuidString.lowercased()
        let tmp = containersdir + "/.new.\(id).\(ProcessIdentity.pid)@\(ProcessIdentity.host)"
        try Self.io { try FileIO.mkdirs(tmp + "/" + Self.rootDir, mode: 0o700) }
        _ = chmod(tmp, 0o755 & ~AtFile.umaskBits)
        return (id, tmp)
    }

    /// Makes a directory from `newContainerDirectory` the container `id`: its store ref holds `holds`
    /// (blobs and diff_ids its files may be linked to), then it is renamed into place and named.
    /// On failure the directory is removed.
    public func adopt(id: String, directory tmp: String, holds: [Digest], name: String?) throws {
        do {
            if let name { try Self.validateName(name); if resolve(name) != nil { throw RuntimeError.containerNameExists(name) } }
            try Self.io { try store.setRef(holder: holder(id), digests: holds) }
            try adoptDirectory(id: id, temp: tmp)
            if let name { try setName(id, name) }
        } catch {
            discard(id: id, temp: tmp)
            throw error
        }
    }

    private func adoptDirectory(id: String, temp: String) throws {
        let dest = directory(id)
        if Glibc.rename(temp, dest) != 0 { throw RuntimeError.io("rename", dest, errno) }
    }

    /// Removes a half-made container and its ref (best effort: the user gets the original error).
    private func discard(id: String, temp: String) {
        try? ContainerTree.remove(temp)
        if !FileIO.exists(directory(id)) { _ = try? store.release(holder: holder(id)) }
    }

    /// Clones a container: a new id (and `name`), the same metadata, and a ROOT where files still
    /// shared with the store are linked again and everything else is copied (reflink where possible).
    public func clone(_ idOrName: String, name: String?) throws -> ContainerCreation {
        guard let source = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        if let name {
            try Self.validateName(name)
            if resolve(name) != nil { throw RuntimeError.containerNameExists(name) }
        }
        let srcDir = directory(source)
        try ContainerDirectoryCheck.check(srcDir)
        let holds = try Self.io { try store.ref(holder: holder(source)) } ?? []
        let layers = materializeInfo(source)?.layers ?? []
        let (id, tmp) = try newContainerDirectory()
        do {
            try Self.io { try store.setRef(holder: holder(id), digests: holds) }
            // udocker copies the whole container directory: its metadata files come along.
            for f in try Self.io({ try FileIO.listDirectory(srcDir) }) where f != Self.rootDir && !f.hasPrefix(".tmp.") {
                var st = stat()
                guard lstat(srcDir + "/" + f, &st) == 0 else { continue }
                if (st.st_mode & S_IFMT) == S_IFLNK { throw BeneathFiles.failure("open", base: srcDir, rel: f, errno: ELOOP) }
                guard (st.st_mode & S_IFMT) == S_IFREG else { continue }
                // Opened without following: a link put there since is refused, not read.
                try Self.writeFile(tmp + "/" + f, try BeneathFiles.read(srcDir + "/" + f, beneath: srcDir))
            }
            let unsealed = store.prepareLinkTrees(layers)
            var report = try ContainerTree.clone(store: store, layers: layers, from: srcDir + "/" + Self.rootDir,
                                                 to: tmp + "/" + Self.rootDir)
            report.notes += Self.notes(unsealed)
            // Fn and Rn setups are tied to the source's path and host: the clone starts in P1 (ModeConversion).
            if let m = execMode(source), ModeConversion.arrivalMode(m) != m.uppercased() {
                let tree = layers.isEmpty ? nil : MergedTree(layers: try Materializer(store: store).inputs(layers))
                report.notes += try ModeConversion.convertOwnCopy(containerDir: tmp, asidesFrom: srcDir, imageTree: tree)
            }
            if var info = materializeInfo(source) {
                info.protection = store.protection.owner != nil && unsealed.isEmpty ? MaterializeInfo.sealed : MaterializeInfo.detect
                try Self.writeFile(tmp + "/" + MaterializeInfo.fileName, try Self.encode(info))
            }
            try adoptDirectory(id: id, temp: tmp)
            if let name { try setName(id, name) }
            return ContainerCreation(id: id, report: report, nameNotSet: nil)
        } catch {
            discard(id: id, temp: tmp)
            throw RuntimeError.createFailed(what: "cloning container \(idOrName)", reason: Self.reason(error))
        }
    }

    // MARK: removing

    /// Removes what a killed create, clone, import or rm left: `.new.<id>.<pid>@<host>` and
    /// `.rm.<id>.<pid>@<host>` directories whose process is gone from this host, and their store refs.
    /// Returns how many. Called before making or removing a container and by `store gc`.
    @discardableResult
    public func sweepAbandoned() -> Int {
        guard let entries = try? FileIO.listDirectory(containersdir) else { return 0 }
        var swept = 0
        for e in entries where e.hasPrefix(".new.") || e.hasPrefix(".rm.") {
            let rest = e.dropFirst(e.hasPrefix(".new.") ? 5 : 4)
            guard let at = rest.lastIndex(of: "@"), let dot = rest[..<at].lastIndex(of: "."),
                  let pid = Int32(rest[rest.index(after: dot)..<at]),
                  ProcessIdentity.isDead(host: String(rest[rest.index(after: at)...]), pid: pid) else { continue }
            let id = String(rest[..<dot])
            guard (try? ContainerTree.remove(containersdir + "/" + e)) != nil else { continue }
            if !id.isEmpty && !FileIO.exists(directory(id)) { _ = try? store.release(holder: holder(id)) }
            swept += 1
        }
        return swept
    }

    /// Removes a container (refused when protected): its names, its directory, then its store ref,
    /// deleting store data nothing else holds (the layers of an image removed while it existed).
    @discardableResult
    public func remove(_ idOrName: String) throws -> ReleaseReport {
        let id = try removable(idOrName)
        let info = try require(id)
        for n in info.names { _ = unlink(containersdir + "/" + n) }
        sweepAbandoned()
        let aside = containersdir + "/.rm.\(id).\(ProcessIdentity.pid)@\(ProcessIdentity.host)"
        let dir = directory(id)
        if Glibc.rename(dir, aside) != 0 { throw RuntimeError.io("rename", dir, errno) }
        try ContainerTree.remove(aside)
        ContainerDelta.forget(self, id: id)
        return try Self.io { try store.release(holder: holder(id)) }
    }

    /// The id of container `idOrName` if `remove` would remove it, else the error it would throw
    /// (so that `rm` says what it deletes only once nothing refuses).
    public func removable(_ idOrName: String) throws -> String {
        guard let id = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        if isProtected(id) { throw RuntimeError.containerProtected(idOrName) }
        return id
    }

    // MARK: names

    /// udocker's rules: no '/', '.', ' ', '[' or ']'; also no control characters, and at most 255
    /// bytes (a name is a file name).
    public static func validateName(_ name: String) throws {
        if name.isEmpty { throw RuntimeError.invalidContainerName(name, "a name cannot be empty") }
        if name.contains(where: { "/. []".contains($0) }) {
            throw RuntimeError.invalidContainerName(name, "names cannot contain '/', '.', ' ', '[' or ']'")
        }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw RuntimeError.invalidContainerName(name, "names cannot contain control characters")
        }
        if name.utf8.count > 255 { throw RuntimeError.invalidContainerName(name, "a name has at most 255 bytes") }
    }

    /// Gives container `idOrName` the name `name` (a symlink containers/<name> -> <id>).
    public func setName(_ idOrName: String, _ name: String) throws {
        guard let id = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        try Self.validateName(name)
        if symlink(id, containersdir + "/" + name) != 0 {
            if errno == EEXIST { throw RuntimeError.containerNameExists(name) }
            throw RuntimeError.io("symlink", containersdir + "/" + name, errno)
        }
    }

    public func removeName(_ name: String) throws {
        try Self.validateName(name)
        let p = containersdir + "/" + name
        var st = stat()
        guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { throw RuntimeError.containerNameNotFound(name) }
        if unlink(p) != 0 && errno != ENOENT { throw RuntimeError.io("unlink", p, errno) }
    }

    /// Moves name `name` to `newName` (udocker's rename).
    public func rename(_ name: String, to newName: String) throws {
        guard let id = resolve(name) else { throw RuntimeError.containerNotFound(name) }
        try Self.validateName(newName)
        if resolve(newName) != nil { throw RuntimeError.containerNameExists(newName) }
        try removeName(name)
        do { try setName(id, newName) } catch {
            try? setName(id, name)
            throw error
        }
    }

    // MARK: protection and setup

    public func isProtected(_ id: String) -> Bool { FileIO.exists(directory(id) + "/" + Self.protectFile) }

    public func protect(_ idOrName: String) throws {
        guard let id = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        try BeneathFiles.write(directory(id) + "/" + Self.protectFile, beneath: directory(id), [])
    }

    public func unprotect(_ idOrName: String) throws {
        guard let id = resolve(idOrName) else { throw RuntimeError.containerNotFound(idOrName) }
        let p = directory(id) + "/" + Self.protectFile
        if unlink(p) != 0 && errno != ENOENT { throw RuntimeError.io("unlink", p, errno) }
    }

    /// `setup --fixperm`: every directory of ROOT owner-rwx, every file owner-readable (files still
    /// linked to the store are copied first). Returns how many entries changed.
    public func fixPermissions(_ idOrName: String) throws -> Int {
        let id = try usable(idOrName)
        return try ContainerTree.fixPermissions(directory(id) + "/" + Self.rootDir)
    }

    /// `setup --purge`: removes what running the container left: the Fakechroot modes' volume links
    /// in ROOT and their regenerated files in the container's directory. Returns what was removed.
    public func purge(_ idOrName: String) throws -> [String] {
        let id = try usable(idOrName)
        let dir = directory(id)
        return try FakechrootVolumes.purge(root: dir + "/" + Self.rootDir, stateDir: dir)
            + FakechrootTree.removeGenerated(stateDir: dir)
    }

    // MARK: helpers

    static func readLink(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func readText(_ path: String) -> String? {
        guard let b = try? FileIO.readFile(path) else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    /// What the user is told about layers `Store.sealLayers` could not seal.
    static func notes(_ unsealed: [(layer: Digest, reason: String)]) -> [String] {
        unsealed.map { "layer \($0.layer) could not be sealed, so runs are checked for changes to it instead: \($0.reason)" }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try io { try FileIO.writeAtomically(path, bytes) }
    }

    static func encode<T: Encodable>(_ v: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        do { return Array(try e.encode(v)) + [10] } catch {
            throw RuntimeError.io("encode", "\(T.self)", EINVAL)
        }
    }

    static func reason(_ error: Error) -> String {
        if case RuntimeError.createFailed(_, let r) = error { return r }
        return "\(error)"
    }

    static func io<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch CASError.io(let op, let path, let err) {
            throw RuntimeError.io(op, path, err)
        }
    }
}
