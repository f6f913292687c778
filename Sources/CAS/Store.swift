// The content-addressed store: creating and opening it, where its index lives, and the state shared
// by the blob, ref, layer, verify and GC code (each in its own Store+*.swift file).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A store directory (see docs/store-format.md). Blocking and synchronous; one instance may be used
/// from many threads, and many processes (on many hosts, for a network filesystem) may use one store.
public final class Store: Sendable {
    public let layout: StoreLayout
    /// The store's id from store.json; names its index cache on network filesystems.
    public let id: String
    /// Where the LMDB index lives: STORE/index, or a local cache directory for a network filesystem.
    public let indexDirectory: String
    /// statfs magic of the store's filesystem.
    public let filesystemMagic: Int64
    /// Whether the store is on a network filesystem (so its index is a per-host cache).
    public let onNetworkFilesystem: Bool
    /// What opening did that the user may want to know (index rebuilt, temp files swept).
    public let notes: [String]
    /// How unpacked files are protected from the containers linked to them (see StoreProtection).
    public let protection: StoreProtection
    /// The Unix group of a group store (see Store+Group.swift); nil for a store of one user.
    public let group: SharedGroup?

    let index: StoreIndex
    var files: StoreFiles { StoreFiles(layout: layout) }

    private init(layout: StoreLayout, id: String, indexDirectory: String, magic: Int64, network: Bool,
                 notes: [String], index: StoreIndex, protection: StoreProtection, group: SharedGroup?) {
        self.layout = layout; self.id = id; self.indexDirectory = indexDirectory
        self.filesystemMagic = magic; self.onNetworkFilesystem = network; self.notes = notes; self.index = index
        self.protection = protection; self.group = group
    }

    /// Creates the store layout and store.json at `path` (if not there yet) and opens it.
    /// Idempotent, also when several processes create the same store at once.
    public static func create(at path: String) throws -> Store {
        try create(at: path, environment: ProcessInfo.processInfo.environment)
    }

    static func create(at path: String, environment: [String: String]) throws -> Store {
        let layout = StoreLayout(root: path)
        try FileIO.mkdirs(layout.root)
        try makeSubdirectories(layout)
        if !FileIO.exists(layout.storeFile) {
            let sf = StoreFile(format: StoreLayout.formatVersion, id: UUID().uuidString.lowercased())
            // No-replace rename: of two racing creators, the first store.json wins and both use it.
            try StoreFiles(layout: layout).writeAtomically(layout.storeFile, try StoreFiles.encode(sf), replace: false)
        }
        return try open(at: path, environment: environment)
    }

    /// Opens an existing store. Throws CASError.notAStore when `path` has no store.json and
    /// .unsupportedFormat for a format this code does not know. Sweeps stale temp files and
    /// rebuilds a missing or damaged index (see `notes`).
    public static func open(at path: String) throws -> Store {
        try open(at: path, environment: ProcessInfo.processInfo.environment)
    }

    /// `open(at:)` with the environment variables given (UDOCKER_INDEX_CACHE, XDG_CACHE_HOME, HOME,
    /// UDOCKER_ASSUME_NETWORK_FS), so tests can place the index without changing the process's.
    static func open(at path: String, environment env: [String: String]) throws -> Store {
        let layout = StoreLayout(root: path)
        let sf = try readStoreFile(layout)
        let group = sf.gid.map { SharedGroup(name: sf.group ?? SharedGroup.name(of: $0), gid: $0) }
        if let group {
            // Before anything is written: a member's files would otherwise be unusable to the others.
            try? makeSubdirectories(layout, gid: group.gid)
            for f in lockFiles(layout) where !FileIO.exists(f) { makeLockFile(f, gid: group.gid) }
            let problems = groupProblems(layout, gid: group.gid)
            if !problems.isEmpty {
                throw CASError.groupStore("group store \(layout.root) of group \(group.name) cannot be used: " + problems.joined(separator: "; ")
                                          + ". " + groupFix(layout, gid: group.gid))
            }
        } else {
            // Creates directories a newer layout added; harmless when they exist or cannot be made.
            try? makeSubdirectories(layout)
        }
        var notes = [String]()
        let swept = TempSweeper.sweep(layout.tmpDir)
        if swept > 0 { notes.append("removed \(swept) temporary file(s) left by interrupted udocker processes") }

        let magic = try FilesystemKind.magic(of: layout.root)
        let network = FilesystemKind.isNetwork(magic: magic) || env["UDOCKER_ASSUME_NETWORK_FS"] == "1"
        // A group store's index is each member's own too: a shared LMDB file would let one member's
        // crash or bug mislead every other member's GC.
        let perUserIndex = network || group != nil
        let indexDir = indexLocation(layout: layout, storeID: sf.id, onNetworkFilesystem: perUserIndex,
                                     environment: env, isNetworkPath: isOnNetworkFilesystem)
        if perUserIndex && indexDir.hasPrefix("/tmp/udocker-index-") { try makePrivateDirectory(FileIO.parent(of: indexDir)) }
        let lockPath = perUserIndex ? indexDir + ".lock" : layout.indexLock
        let files = StoreFiles(layout: layout)
        let (index, indexNotes) = try StoreIndex.open(directory: indexDir, lockPath: lockPath, storeID: sf.id) {
            try files.snapshot()
        }
        notes += indexNotes
        return Store(layout: layout, id: sf.id, indexDirectory: indexDir, magic: magic, network: network,
                     notes: notes, index: index, protection: StoreProtection.detect(environment: env, network: network),
                     group: group)
    }

    static func readStoreFile(_ layout: StoreLayout) throws -> StoreFile {
        let bytes: [UInt8]
        do { bytes = try FileIO.readFile(layout.storeFile) } catch CASError.io(_, _, let e) where e == ENOENT || e == ENOTDIR {
            throw CASError.notAStore(layout.root)
        }
        struct Version: Decodable { var format: Int }
        guard let v = try? JSONDecoder().decode(Version.self, from: Data(bytes)) else {
            throw CASError.notAStore(layout.root)
        }
        if v.format != StoreLayout.formatVersion { throw CASError.unsupportedFormat(layout.root, v.format) }
        guard let sf = try? JSONDecoder().decode(StoreFile.self, from: Data(bytes)), !sf.id.isEmpty,
              sf.id.unicodeScalars.allSatisfy(ProcessIdentity.isSafeNameScalar) else {
            throw CASError.notAStore(layout.root)
        }
        return sf
    }

    private static func makeSubdirectories(_ layout: StoreLayout) throws {
        for d in [layout.blobsDir, layout.layersDir, layout.refsDir, layout.repositoriesDir, layout.tmpDir, layout.locksDir] {
            try FileIO.mkdirs(d)
        }
    }

    /// The last-resort index cache lives in /tmp, where another user could plant a directory or a
    /// symlink: insist on a real directory owned by us and closed to others.
    private static func makePrivateDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw CASError.io("mkdir", path, errno) }
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == getuid(),
              (st.st_mode & 0o077) == 0 else {
            throw CASError.index("\(path) is not a private directory owned by this user; remove it or set UDOCKER_INDEX_CACHE")
        }
    }

    public static func isOnNetworkFilesystem(_ path: String) -> Bool {
        // The nearest existing ancestor decides: the cache directory may not exist yet.
        var p = path
        while !FileIO.exists(p) && p != "/" && p != "." { p = FileIO.parent(of: p) }
        guard let m = try? FilesystemKind.magic(of: p) else { return false }
        return FilesystemKind.isNetwork(magic: m)
    }

    /// Where the index of a store lives (pure apart from `isNetworkPath`): STORE/index on a local
    /// filesystem; on a network filesystem the first local one of $UDOCKER_INDEX_CACHE/<id>,
    /// $XDG_CACHE_HOME/udocker/index/<id>, ~/.cache/udocker/index/<id>, else /tmp/udocker-index-<uid>/<id>.
    public static func indexLocation(layout: StoreLayout, storeID: String, onNetworkFilesystem: Bool,
                                     environment: [String: String],
                                     isNetworkPath: (String) -> Bool) -> String {
        if !onNetworkFilesystem { return layout.localIndexDir }
        var candidates = [String]()
        if let c = environment["UDOCKER_INDEX_CACHE"], c.hasPrefix("/") { candidates.append(c + "/" + storeID) }
        if let x = environment["XDG_CACHE_HOME"], x.hasPrefix("/") { candidates.append(x + "/udocker/index/" + storeID) }
        if let h = environment["HOME"], h.hasPrefix("/") { candidates.append(h + "/.cache/udocker/index/" + storeID) }
        for c in candidates where !isNetworkPath(c) { return c }
        return "/tmp/udocker-index-\(getuid())/\(storeID)"
    }
}
