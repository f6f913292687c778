// The LMDB index of a store: opening it (rebuilding it when it is missing, damaged or of another
// format), the per-process registry of open environments, and whole-index rebuild and dump.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Everything the index holds, as scanned from the store's files; what a rebuild writes.
struct IndexSnapshot {
    var blobs: [BlobRecord] = []
    var layers: [LayerRecord] = []
    var files: [([UInt8], [UInt8])] = []
    var refs: [String: [Digest]] = [:]
    var refsGeneration: UInt64 = 0
}

/// One LMDB environment per index file per process: LMDB forbids opening the same environment
/// twice in a process (closing one copy drops the other's fcntl locks). An environment is reused
/// only while the index directory still holds the file it opened, so an index deleted and recreated
/// under an open store gets a fresh environment.
final class IndexRegistry: @unchecked Sendable {
    static let shared = IndexRegistry()
    private let lock = NSLock()
    private let openLock = NSLock()
    private var entries: [ObjectIdentifier: (env: LMDBEnv, users: Int)] = [:]

    /// "device:inode" of the data file in `dir`, or nil when there is none.
    static func key(ofDataFileIn dir: String) -> String? {
        var st = stat()
        guard stat(dir + "/data.mdb", &st) == 0 else { return nil }
        return "\(st.st_dev):\(st.st_ino)"
    }

    func serializingOpens<T>(_ body: () throws -> T) rethrows -> T {
        openLock.lock()
        defer { openLock.unlock() }
        return try body()
    }

    func acquireExisting(directory: String) -> LMDBEnv? {
        guard let key = IndexRegistry.key(ofDataFileIn: directory) else { return nil }
        lock.lock()
        defer { lock.unlock() }
        for (id, e) in entries where e.env.fileKey == key {
            entries[id] = (e.env, e.users + 1)
            return e.env
        }
        return nil
    }

    func register(_ env: LMDBEnv) {
        lock.lock()
        defer { lock.unlock() }
        let id = ObjectIdentifier(env)
        entries[id] = (env, (entries[id]?.users ?? 0) + 1)
    }

    func release(_ env: LMDBEnv) {
        lock.lock()
        defer { lock.unlock() }
        let id = ObjectIdentifier(env)
        guard let e = entries[id] else { return }
        if e.users <= 1 {
            entries[id] = nil
            // Closed under the registry lock so no new environment for this file opens meanwhile.
            e.env.close()
        } else {
            entries[id] = (e.env, e.users - 1)
        }
    }
}

/// The open index of one Store. All methods are thread-safe and throw CASError.
final class StoreIndex: Sendable {
    let directory: String
    let env: LMDBEnv

    private init(directory: String, env: LMDBEnv) {
        self.directory = directory; self.env = env
    }

    deinit { IndexRegistry.shared.release(env) }

    /// Opens the index in `directory`, creating or rebuilding it as needed. `lockPath` serialises
    /// creation between processes; `snapshot` scans the store's files when a rebuild is needed.
    /// Returns notes for the user about anything that was rebuilt.
    static func open(directory: String, lockPath: String, storeID: String,
                     snapshot: () throws -> IndexSnapshot) throws -> (StoreIndex, [String]) {
        // One opener at a time in this process, so no index file is opened twice (see IndexRegistry).
        try IndexRegistry.shared.serializingOpens {
            try FileIO.mkdirs(FileIO.parent(of: directory))
            if let env = IndexRegistry.shared.acquireExisting(directory: directory) {
                return (StoreIndex(directory: directory, env: env), [])
            }
            // Fast path under a shared lock (hundreds of `udocker run`s open the store at once):
            // an existing, valid index is just opened.
            do {
                let shared = try FileLock(path: lockPath, exclusive: false)
                defer { shared.unlock() }
                if IndexRegistry.key(ofDataFileIn: directory) != nil, let env = try? LMDBEnv.open(directory: directory) {
                    if (try? metaProblem(env, storeID: storeID)) == .some(nil) {
                        IndexRegistry.shared.register(env)
                        return (StoreIndex(directory: directory, env: env), [])
                    }
                    env.close()
                }
            }
            let lock = try FileLock(path: lockPath)
            defer { lock.unlock() }
            return try openExclusively(directory: directory, storeID: storeID, snapshot: snapshot)
        }
    }

    /// Why an open index cannot be used as it is (nil when it can).
    private static func metaProblem(_ env: LMDBEnv, storeID: String) throws -> String? {
        let (format, id) = try wrap {
            try env.read { t in
                (try t.get(.meta, Array("format".utf8)), try t.get(.meta, Array("store-id".utf8)))
            }
        }
        let f = format.map { String(decoding: $0, as: UTF8.self) }
        let i = id.map { String(decoding: $0, as: UTF8.self) }
        if f == nil { return "has no format record (an interrupted rebuild?)" }
        if f != IndexCodec.format { return "has format \(f ?? "") instead of \(IndexCodec.format)" }
        if i != storeID { return "belongs to another store (\(i ?? "none"))" }
        return nil
    }

    /// Opens, creates or rebuilds the index; the caller holds the index lock exclusively.
    private static func openExclusively(directory: String, storeID: String,
                                        snapshot: () throws -> IndexSnapshot) throws -> (StoreIndex, [String]) {
        var notes = [String]()
        let existed = IndexRegistry.key(ofDataFileIn: directory) != nil
        try FileIO.mkdirs(directory)
        var env: LMDBEnv
        var rebuild = !existed
        do {
            env = try LMDBEnv.open(directory: directory)
        } catch let e as LMDBError where e.isCorruption {
            notes.append("the store index \(directory) was damaged (\(e)); it was removed and rebuilt from the store's files")
            try discard(directory)
            env = try wrap { try LMDBEnv.open(directory: directory) }
            rebuild = true
        } catch let e as LMDBError {
            throw CASError.index(e.description)
        }
        if !rebuild, let what = try metaProblem(env, storeID: storeID) {
            notes.append("the store index \(directory) \(what); it was removed and rebuilt from the store's files")
            env.close()
            try discard(directory)
            env = try wrap { try LMDBEnv.open(directory: directory) }
            rebuild = true
        } else if !existed {
            notes.append("the store index \(directory) was missing; it was rebuilt from the store's files")
        }
        IndexRegistry.shared.register(env)
        let index = StoreIndex(directory: directory, env: env)
        if rebuild { try index.replaceAll(with: try snapshot(), storeID: storeID) }
        return (index, notes)
    }

    /// Rebuilds the whole index from `snapshot`. If the index turns out damaged, its files are
    /// replaced by a fresh environment first. Returns a note when that happened.
    func rebuild(storeID: String, snapshot: IndexSnapshot) throws -> String? {
        do {
            try env.write { t in try StoreIndex.fill(t, snapshot, storeID: storeID) }
            return nil
        } catch let e as LMDBError where e.isCorruption {
            try StoreIndex.wrap { try env.reset { try StoreIndex.discard($0) } }
            try replaceAll(with: snapshot, storeID: storeID)
            return "the store index \(directory) was damaged (\(e)); it was replaced by a new one"
        } catch let e as LMDBError {
            throw CASError.index(e.description)
        }
    }

    /// Moves a damaged index directory aside and removes it.
    static func discard(_ directory: String) throws {
        let aside = directory + ".damaged." + TempName.make("index")
        if rename(directory, aside) != 0 && errno != ENOENT { throw CASError.io("rename", directory, errno) }
        try? FileIO.removeTree(aside)
        try FileIO.mkdirs(directory)
    }

    /// Runs an LMDB operation, turning its errors into CASError.
    static func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as LMDBError { throw CASError.index(e.description) }
    }

    func read<T>(_ body: (LMDBTxn) throws -> T) throws -> T {
        try StoreIndex.wrap { try env.read(body) }
    }

    func write<T>(_ body: (LMDBTxn) throws -> T) throws -> T {
        try StoreIndex.wrap { try env.write(body) }
    }

    // MARK: whole index

    /// Replaces the whole content in one transaction, so readers see either the old or the new index.
    func replaceAll(with s: IndexSnapshot, storeID: String) throws {
        try write { t in try StoreIndex.fill(t, s, storeID: storeID) }
    }

    static func fill(_ t: LMDBTxn, _ s: IndexSnapshot, storeID: String) throws {
        for db in IndexDB.allCases { try t.clear(db) }
        for b in s.blobs { try t.put(.blobs, b.digest.rawBytes, IndexCodec.blobValue(b)) }
        for l in s.layers {
            try t.put(.layers, l.diffID.rawBytes, IndexCodec.layerValue(l))
            for b in l.blobs { try t.put(.blobLayers, b.rawBytes, l.diffID.rawBytes) }
        }
        for (k, v) in s.files { try t.put(.files, k, v) }
        try putRefs(t, s.refs, generation: s.refsGeneration)
        try t.put(.meta, Array("store-id".utf8), Array(storeID.utf8))
        // Written last: its presence says the rebuild completed.
        try t.put(.meta, Array("format".utf8), Array(IndexCodec.format.utf8))
    }

    /// Replaces the refs and refcounts databases with `refs`.
    static func putRefs(_ t: LMDBTxn, _ refs: [String: [Digest]], generation: UInt64) throws {
        try t.clear(.refs)
        try t.clear(.refcounts)
        var counts = [Digest: Int]()
        for (holder, ds) in refs {
            try t.put(.refs, Array(holder.utf8), IndexCodec.refValue(ds))
            for d in Set(ds) { counts[d, default: 0] += 1 }
        }
        for (d, n) in counts { try t.put(.refcounts, d.rawBytes, IndexCodec.countValue(n)) }
        try t.put(.meta, Array("refs-generation".utf8), Array(String(generation).utf8))
    }

    /// Every entry as a line of text, sorted: equal dumps mean equal indexes.
    func dump() throws -> [String] {
        var lines = [String]()
        try read { t in
            try t.forEach(.meta) { k, v in
                lines.append("meta \(String(decoding: k, as: UTF8.self))=\(String(decoding: v, as: UTF8.self))")
                return true
            }
            try t.forEach(.blobs) { k, v in
                let d = IndexCodec.digest(k, at: 0)
                if let d, let r = IndexCodec.blobRecord(d, v) {
                    lines.append("blob \(d) size=\(r.size) lastuse=\(r.lastUse) type=\(r.mediaType ?? "-")")
                } else {
                    lines.append("blob malformed \(k.count)/\(v.count) bytes")
                }
                return true
            }
            try t.forEach(.refs) { k, v in
                let ds = IndexCodec.digests(v, from: 0)?.map(\.description).joined(separator: ",") ?? "malformed"
                lines.append("ref \(String(reflecting: String(decoding: k, as: UTF8.self))) \(ds)")
                return true
            }
            try t.forEach(.refcounts) { k, v in
                lines.append("refcount \(IndexCodec.digest(k, at: 0).map(\.description) ?? "malformed") \(IndexCodec.u64(v, at: 0).map(String.init) ?? "malformed")")
                return true
            }
            try t.forEach(.layers) { k, v in
                if let d = IndexCodec.digest(k, at: 0), let r = IndexCodec.layerRecord(d, v) {
                    let bs = r.blobs.map(\.description).joined(separator: ",")
                    lines.append("layer \(d) files=\(r.fileCount) bytes=\(r.bytes) lastuse=\(r.lastUse) blobs=\(bs)")
                } else {
                    lines.append("layer malformed \(k.count)/\(v.count) bytes")
                }
                return true
            }
            try t.forEach(.blobLayers) { k, v in
                lines.append("blob-layer \(IndexCodec.digest(k, at: 0).map(\.description) ?? "malformed") \(IndexCodec.digest(v, at: 0).map(\.description) ?? "malformed")")
                return true
            }
            try t.forEach(.files) { k, v in
                if let layer = IndexCodec.digest(k, at: 0), let f = IndexCodec.fileRecord(v) {
                    lines.append("file \(layer) \(String(reflecting: f.path)) \(f.digest) size=\(f.size)")
                } else {
                    lines.append("file malformed \(k.count)/\(v.count) bytes")
                }
                return true
            }
        }
        return lines.sorted()
    }
}
