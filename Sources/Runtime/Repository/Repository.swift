// A udocker repository: udocker 1.3's directory layout (repos, layers, containers, bin, lib, doc)
// plus the content store it uses, which may be shared by several repositories.
import CAS

/// What creating or opening a repository did, for the user to read.
public enum RepositoryAction: Sendable, Equatable, CustomStringConvertible {
    case createdRepository(String)
    case repositoryExists(String)
    case createdStore(String)
    case usingStore(String)
    case registered(id: String, store: String)
    case alreadyRegistered(id: String, store: String)
    case updatedRegistration(id: String, store: String)
    case createdGroupStore(String, String)
    case joinedGroupStore(String, String)
    case madeGroupStore(String, String)

    public var description: String {
        switch self {
        case .createdRepository(let p): return "created repository: \(p)"
        case .repositoryExists(let p): return "repository already exists: \(p)"
        case .createdStore(let p): return "created store: \(p)"
        case .usingStore(let p): return "using existing store: \(p)"
        case .registered(let id, let s): return "registered repository \(id) in store: \(s)"
        case .alreadyRegistered(let id, let s): return "repository \(id) is registered in store: \(s)"
        case .updatedRegistration(let id, let s): return "updated the path of repository \(id) in store: \(s)"
        case .createdGroupStore(let s, let g): return "created group store of group \(g): \(s)"
        case .joinedGroupStore(let s, let g): return "joined group store of group \(g): \(s)"
        case .madeGroupStore(let s, let g): return "made the store a group store of group \(g) (gave the group what you own in it): \(s)"
        }
    }
}

/// On-disk bookkeeping of a repository, besides udocker's own directories:
/// - `REPO/repo.json`: `{"format":1,"id":"<uuid>"}`, the repository's identity.
/// - `REPO/store.path`: the absolute path of the store the repository uses (one line).
/// - `STORE/repositories/<uuid>`: the repository's absolute path (one line), so the store knows
///   every repository whose images and containers reference it (GC keeps what any of them uses).
/// A repository made by udocker 1.3 has none of these; `open` accepts it (its store is the
/// configured one), `create` on it adds them.
public struct Repository: Sendable, Equatable {
    /// The repository directory (udocker's topdir), absolute.
    public let topdir: String
    /// The repository's uuid from repo.json; nil for a repository made by udocker 1.3.
    public let id: String?
    /// The content store directory, absolute.
    public let storeDir: String
    /// Whether `storeDir` is recorded in REPO/store.path (false: taken from the configuration).
    public let storeRecorded: Bool
    public let reposdir: String
    public let layersdir: String
    public let containersdir: String
    public let bindir: String
    public let libdir: String
    public let docdir: String

    public var store: StoreLayout { StoreLayout(root: storeDir) }
    public var metadataFile: String { Repository.metadataFile(topdir) }
    public var storePathFile: String { Repository.storePathFile(topdir) }

    /// udocker 1.3's subdirectories of a repository, in the order it creates them.
    public static let subdirectories = ["repos", "layers", "containers", "bin", "lib", "doc"]
    static func metadataFile(_ topdir: String) -> String { topdir + "/repo.json" }
    static func storePathFile(_ topdir: String) -> String { topdir + "/store.path" }
    static let defaultStoreName = "store"

    /// udocker's test: repos, layers, containers, bin and lib exist (doc is optional).
    public static func isRepository(at topdir: String) -> Bool {
        let top = Paths.absolute(topdir)
        return ["repos", "layers", "containers", "bin", "lib"].allSatisfy { FileIO.isDirectory(top + "/" + $0) }
    }

    /// Opens the repository the configuration selects (--repo, UDOCKER_DIR, topdir, default
    /// $HOME/.udocker; UDOCKER_BIN etc. relocate single directories as in udocker). Does not write.
    public static func open(_ config: Configuration) throws -> Repository {
        let dirs = Directories(config)
        guard dirs.isRepository else { throw RuntimeError.notARepository(dirs.topdir) }
        let id = try MetadataFiles.readIdentity(metadataFile(dirs.topdir))?.id
        let storeDir: String
        let recorded: Bool
        if let path = try MetadataFiles.readPathFile(storePathFile(dirs.topdir)) {
            storeDir = path
            recorded = true
        } else {
            storeDir = defaultStore(topdir: dirs.topdir, configured: config.storedir)
            recorded = false
        }
        return Repository(topdir: dirs.topdir, id: id, storeDir: storeDir, storeRecorded: recorded,
                          reposdir: dirs.reposdir, layersdir: dirs.layersdir, containersdir: dirs.containersdir,
                          bindir: dirs.bindir, libdir: dirs.libdir, docdir: dirs.docdir)
    }

    /// udocker's start-up: opens the selected repository, creating it (and its store) when it does
    /// not exist yet, except when it was named with --repo, which must name an existing repository.
    public static func openOrCreate(_ config: Configuration) throws -> (repository: Repository, actions: [RepositoryAction]) {
        let dirs = Directories(config)
        if dirs.isRepository { return (try open(config), []) }
        if config.source(of: "topdir") == .option("--repo") {
            throw RuntimeError.notARepository(dirs.topdir)
        }
        let created = try create(topdir: dirs.topdir, directories: dirs.all, storeDir: nil,
                                 configuredStoreDir: config.storedir)
        return (try open(config), created.actions)
    }

    public struct Creation: Sendable, Equatable {
        public let repository: Repository
        /// What was done, in order, for `mkrepo` to print.
        public let actions: [RepositoryAction]
    }

    /// Creates a repository at `dir` with udocker's layout and attaches it to a content store:
    /// `storeDir` if given (an existing store, possibly shared with other repositories, or a new or
    /// empty directory), else `configuredStoreDir` (the `storedir` key; relative means relative to
    /// `dir`), else DIR/store. Idempotent: on an existing repository it only adds what is missing;
    /// it keeps the store already recorded in it, and fails if `storeDir` names a different one.
    /// With `group` (a group name or number) the store is a group store of that Unix group: created
    /// so, joined, or made so (see CAS's Store+Group.swift).
    @discardableResult
    public static func create(at dir: String, storeDir: String? = nil,
                              configuredStoreDir: String? = nil, group: String? = nil) throws -> Creation {
        let top = Paths.absolute(dir)
        return try create(topdir: top, directories: subdirectories.map { top + "/" + $0 },
                          storeDir: storeDir, configuredStoreDir: configuredStoreDir, group: group)
    }

    static func create(topdir top: String, directories: [String], storeDir: String?,
                       configuredStoreDir: String?, group groupName: String? = nil) throws -> Creation {
        let group = try groupName.map { try SharedGroup.lookup($0) }
        // Check everything before changing anything, so a refused mkrepo leaves no trace.
        if FileIO.exists(top) && !FileIO.isDirectory(top) { throw RuntimeError.notADirectory(top) }
        let existed = isRepository(at: top)
        if !existed && FileIO.isDirectory(top) {
            let names = try MetadataFiles.io { try FileIO.listDirectory(top) }
            let known: Set<String> = Set(subdirectories + [defaultStoreName, "store.path", "repo.json",
                                                            ConfigDefaults.configFileName, "keystore", "keystore.lock"])
            if names.contains(where: { !known.contains($0) && !$0.hasPrefix(".tmp.") }) {
                throw RuntimeError.notEmptyForRepository(top)
            }
        }
        let recorded = try MetadataFiles.readPathFile(storePathFile(top))
        let requested = storeDir.map { Paths.absolute($0) }
        if let recorded, let requested, recorded != requested {
            throw RuntimeError.storeMismatch(repository: top, recorded: recorded, requested: requested)
        }
        let storeRoot = recorded ?? requested ?? defaultStore(topdir: top, configured: configuredStoreDir)
        try StoreAttachment.check(storeRoot)

        var actions: [RepositoryAction] = [existed ? .repositoryExists(top) : .createdRepository(top)]
        try MetadataFiles.mkdirs(top)
        for d in directories { try MetadataFiles.mkdirs(d) }
        actions.append(try StoreAttachment.prepare(storeRoot, group: group))

        var id = MetadataFiles.newID()
        if !(try MetadataFiles.createOnly(metadataFile(top), MetadataFiles.identityJSON(id: id))) {
            // Made earlier, or by a concurrent mkrepo: its id is the repository's id.
            guard let existing = try MetadataFiles.readIdentity(metadataFile(top)) else {
                throw RuntimeError.badMetadata(path: metadataFile(top), reason: "vanished while being read")
            }
            id = existing.id
        }
        if recorded == nil {
            try MetadataFiles.writeAtomically(storePathFile(top), storeRoot + "\n")
        }
        actions.append(try StoreAttachment.register(repository: top, id: id, store: storeRoot))

        let repo = Repository(topdir: top, id: id, storeDir: storeRoot, storeRecorded: true,
                              reposdir: top + "/repos", layersdir: top + "/layers",
                              containersdir: top + "/containers", bindir: top + "/bin",
                              libdir: top + "/lib", docdir: top + "/doc")
        return Creation(repository: repo, actions: actions)
    }

    static func defaultStore(topdir: String, configured: String?) -> String {
        if let configured { return Paths.absolute(configured, base: topdir) }
        return topdir + "/" + defaultStoreName
    }

    /// The repository directories the configuration selects, absolute.
    struct Directories {
        let topdir, reposdir, layersdir, containersdir, bindir, libdir, docdir: String

        init(_ config: Configuration) {
            topdir = Paths.absolute(config.topdir)
            reposdir = Paths.absolute(config.reposdir)
            layersdir = Paths.absolute(config.layersdir)
            containersdir = Paths.absolute(config.containersdir)
            bindir = Paths.absolute(config.bindir)
            libdir = Paths.absolute(config.libdir)
            docdir = Paths.absolute(config.docdir)
        }

        /// In udocker's creation order.
        var all: [String] { [reposdir, layersdir, containersdir, bindir, libdir, docdir] }

        var isRepository: Bool {
            [reposdir, layersdir, containersdir, bindir, libdir].allSatisfy { FileIO.isDirectory($0) }
        }
    }
}

extension Repository {
    /// Opens this repository's content store. A repository made by udocker 1.3 (no store recorded)
    /// gets one in its default place; a recorded store that is gone is an error rather than silently
    /// replaced by an empty one (it may be a shared store on a filesystem that is not mounted).
    public func openStore() throws -> Store {
        if FileIO.exists(StoreLayout(root: storeDir).storeFile) || !storeRecorded {
            return try Store.create(at: storeDir)
        }
        throw RuntimeError.storeMissing(repository: topdir, store: storeDir)
    }
}
