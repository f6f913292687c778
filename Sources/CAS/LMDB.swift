// A small LMDB binding for the store index: one environment per index file and process, short
// transactions (MDB_NOTLS), the map grown on MDB_MAP_FULL and another process's growth adopted.
import CLMDB
#if canImport(Glibc)
import Glibc
#endif

/// An LMDB return code with the operation that produced it. Internal: the index turns it into CASError.
struct LMDBError: Error, CustomStringConvertible {
    let code: Int32
    let op: String

    /// Codes that mean the files are damaged (or from an incompatible LMDB): the index is rebuilt.
    var isCorruption: Bool {
        code == MDB_INVALID || code == MDB_CORRUPTED || code == MDB_VERSION_MISMATCH
            || code == MDB_PAGE_NOTFOUND || code == MDB_PANIC
    }

    var description: String { "\(op): \(String(cString: mdb_strerror(code))) (\(code))" }
}

/// The databases of the index (format 1); see docs/store-format.md for the key/value layouts.
enum IndexDB: Int, CaseIterable {
    case meta, blobs, refs, refcounts, layers, blobLayers, files

    var name: String {
        switch self {
        case .meta: return "meta"
        case .blobs: return "blobs"
        case .refs: return "refs"
        case .refcounts: return "refcounts"
        case .layers: return "layers"
        case .blobLayers: return "blob-layers"
        case .files: return "files"
        }
    }
}

/// A pthread read-write lock: transactions hold it shared, map resizing and environment replacement
/// hold it exclusive (LMDB requires that no transaction is active in the process for those).
final class RWLock: @unchecked Sendable {
    private let p: UnsafeMutablePointer<pthread_rwlock_t>
    init() {
        p = .allocate(capacity: 1)
        p.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(p, nil)
    }
    deinit {
        pthread_rwlock_destroy(p)
        p.deallocate()
    }
    func lockShared() { pthread_rwlock_rdlock(p) }
    func lockExclusive() { pthread_rwlock_wrlock(p) }
    func unlock() { pthread_rwlock_unlock(p) }
}

/// An open LMDB environment with the index databases. Thread-safe; see IndexRegistry for why one
/// process opens each index file only once.
final class LMDBEnv: @unchecked Sendable {
    static let initialMapSize = 1 << 30
    static let openFlags = UInt32(MDB_NOTLS | MDB_NOMETASYNC)

    let directory: String
    // Both replaced only under `lock` held exclusive.
    private var env: OpaquePointer
    private var dbis: [MDB_dbi]
    private var closed = false
    private var dataFileKey: String?
    private let lock = RWLock()

    private init(directory: String, env: OpaquePointer, dbis: [MDB_dbi]) {
        self.directory = directory
        self.env = env
        self.dbis = dbis
        dataFileKey = IndexRegistry.key(ofDataFileIn: directory)
    }

    /// "device:inode" of the data file this environment has open.
    var fileKey: String? {
        lock.lockShared()
        defer { lock.unlock() }
        return closed ? nil : dataFileKey
    }

    /// Replaces the environment's files with new empty ones (after damage): closes it, lets
    /// `discard` remove the directory's content, and opens it again. Waits for running transactions.
    func reset(discard: (String) throws -> Void) throws {
        lock.lockExclusive()
        defer { lock.unlock() }
        if !closed { mdb_env_close(env) }
        closed = true
        try discard(directory)
        let (e, d) = try LMDBEnv.openRaw(directory: directory)
        env = e
        dbis = d
        closed = false
        dataFileKey = IndexRegistry.key(ofDataFileIn: directory)
    }

    deinit { if !closed { mdb_env_close(env) } }

    fileprivate func closeEnvironment() {
        lock.lockExclusive()
        defer { lock.unlock() }
        if !closed {
            mdb_env_close(env)
            closed = true
        }
    }

    private func checkOpen() throws {
        if closed { throw LMDBError(code: EBADF, op: "index \(directory) is closed") }
    }

    /// Opens (creating if needed) the environment in the existing directory `directory`.
    static func open(directory: String, mapSize: Int = initialMapSize) throws -> LMDBEnv {
        let (env, dbis) = try openRaw(directory: directory, mapSize: mapSize)
        return LMDBEnv(directory: directory, env: env, dbis: dbis)
    }

    private static func openRaw(directory: String, mapSize: Int = initialMapSize) throws -> (OpaquePointer, [MDB_dbi]) {
        var envp: OpaquePointer?
        var rc: Int32 = 0
        // Batch jobs often run under a virtual memory limit (ulimit -v) that a 1 GiB map exceeds:
        // retry smaller; the map still grows on demand (and LMDB never maps less than the data).
        for size in [mapSize, 256 << 20, 32 << 20] where size <= mapSize {
            envp = nil
            rc = mdb_env_create(&envp)
            guard rc == 0, let env = envp else { throw LMDBError(code: rc, op: "mdb_env_create") }
            mdb_env_set_maxdbs(env, MDB_dbi(IndexDB.allCases.count + 4))
            mdb_env_set_mapsize(env, size)
            rc = mdb_env_open(env, directory, openFlags, 0o664)
            if rc == 0 { break }
            mdb_env_close(env)
            envp = nil
            if rc != ENOMEM { break }
        }
        guard rc == 0, let env = envp else { throw LMDBError(code: rc, op: "open index \(directory)") }
        // Free reader slots left by processes killed while reading.
        var dead: Int32 = 0
        _ = mdb_reader_check(env, &dead)
        // Databases that exist are opened in a read-only transaction, so that opening an existing
        // index (every `udocker run` does) does not queue on LMDB's single writer lock.
        if let dbis = try? openDatabases(env, create: false, directory: directory) { return (env, dbis) }
        do {
            return (env, try openDatabases(env, create: true, directory: directory))
        } catch {
            mdb_env_close(env)
            throw error
        }
    }

    private static func openDatabases(_ env: OpaquePointer, create: Bool, directory: String) throws -> [MDB_dbi] {
        var txnp: OpaquePointer?
        let flags = create ? UInt32(0) : UInt32(MDB_RDONLY)
        var rc = mdb_txn_begin(env, nil, flags, &txnp)
        if rc == MDB_MAP_RESIZED {
            mdb_env_set_mapsize(env, 0)
            rc = mdb_txn_begin(env, nil, flags, &txnp)
        }
        guard rc == 0, let txn = txnp else { throw LMDBError(code: rc, op: "begin transaction in \(directory)") }
        var dbis = [MDB_dbi]()
        for db in IndexDB.allCases {
            var dbi: MDB_dbi = 0
            rc = mdb_dbi_open(txn, db.name, create ? UInt32(MDB_CREATE) : 0, &dbi)
            if rc != 0 {
                mdb_txn_abort(txn)
                throw LMDBError(code: rc, op: "open database \(db.name) in \(directory)")
            }
            dbis.append(dbi)
        }
        rc = mdb_txn_commit(txn)
        if rc != 0 { throw LMDBError(code: rc, op: "create databases in \(directory)") }
        return dbis
    }

    /// Runs `body` in a read-only transaction.
    func read<T>(_ body: (LMDBTxn) throws -> T) throws -> T {
        while true {
            lock.lockShared()
            if closed {
                lock.unlock()
                try checkOpen()
            }
            var txnp: OpaquePointer?
            let rc = mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txnp)
            if rc == MDB_MAP_RESIZED {
                lock.unlock()
                adoptMapSize()
                continue
            }
            guard rc == 0, let txn = txnp else {
                lock.unlock()
                throw LMDBError(code: rc, op: "begin read transaction")
            }
            defer {
                mdb_txn_abort(txn)
                lock.unlock()
            }
            return try body(LMDBTxn(txn: txn, dbis: dbis))
        }
    }

    /// Runs `body` in a write transaction and commits it. On MDB_MAP_FULL the map is doubled and
    /// `body` runs again from the start, so it must only touch the index.
    func write<T>(_ body: (LMDBTxn) throws -> T) throws -> T {
        var grown = 0
        while true {
            lock.lockShared()
            if closed {
                lock.unlock()
                try checkOpen()
            }
            let size = mapSize()
            var txnp: OpaquePointer?
            let rc = mdb_txn_begin(env, nil, 0, &txnp)
            if rc == MDB_MAP_RESIZED {
                lock.unlock()
                adoptMapSize()
                continue
            }
            guard rc == 0, let txn = txnp else {
                lock.unlock()
                throw LMDBError(code: rc, op: "begin write transaction")
            }
            var full = false
            do {
                let result = try body(LMDBTxn(txn: txn, dbis: dbis))
                let c = mdb_txn_commit(txn)
                if c == 0 {
                    lock.unlock()
                    return result
                }
                if c != MDB_MAP_FULL {
                    lock.unlock()
                    throw LMDBError(code: c, op: "commit")
                }
                full = true
            } catch let e as LMDBError where e.code == MDB_MAP_FULL {
                mdb_txn_abort(txn)
                full = true
            } catch {
                mdb_txn_abort(txn)
                lock.unlock()
                throw error
            }
            lock.unlock()
            if full {
                grown += 1
                if grown > 10 { throw LMDBError(code: MDB_MAP_FULL, op: "grow index map") }
                try grow(from: size)
            }
        }
    }

    private func mapSize() -> Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    private func grow(from seen: Int) throws {
        lock.lockExclusive()
        defer { lock.unlock() }
        try checkOpen()
        // Another thread may have grown it already.
        guard mapSize() <= seen else { return }
        let rc = mdb_env_set_mapsize(env, seen * 2)
        if rc != 0 { throw LMDBError(code: rc, op: "grow index map to \(seen * 2) bytes") }
    }

    private func adoptMapSize() {
        lock.lockExclusive()
        defer { lock.unlock() }
        if !closed { mdb_env_set_mapsize(env, 0) }
    }
}

/// A transaction, valid only inside the closure it was given to.
struct LMDBTxn {
    let txn: OpaquePointer
    let dbis: [MDB_dbi]

    private static func withVal<T>(_ bytes: [UInt8], _ body: (inout MDB_val) throws -> T) rethrows -> T {
        // An empty array may have no storage; LMDB still wants a valid pointer for a 0-byte value.
        let storage = bytes.isEmpty ? [0] : bytes
        return try storage.withUnsafeBytes { raw in
            var v = MDB_val(mv_size: bytes.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            return try body(&v)
        }
    }

    private static func bytes(_ v: MDB_val) -> [UInt8] {
        guard let p = v.mv_data, v.mv_size > 0 else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: p, count: v.mv_size))
    }

    func get(_ db: IndexDB, _ key: [UInt8]) throws -> [UInt8]? {
        try LMDBTxn.withVal(key) { k in
            var v = MDB_val()
            let rc = mdb_get(txn, dbis[db.rawValue], &k, &v)
            if rc == MDB_NOTFOUND { return nil }
            if rc != 0 { throw LMDBError(code: rc, op: "read \(db.name)") }
            return LMDBTxn.bytes(v)
        }
    }

    func put(_ db: IndexDB, _ key: [UInt8], _ value: [UInt8]) throws {
        try LMDBTxn.withVal(key) { k in
            try LMDBTxn.withVal(value) { v in
                let rc = mdb_put(txn, dbis[db.rawValue], &k, &v, 0)
                if rc != 0 { throw LMDBError(code: rc, op: "write \(db.name)") }
            }
        }
    }

    /// Deletes `key`; a missing key is not an error.
    func delete(_ db: IndexDB, _ key: [UInt8]) throws {
        try LMDBTxn.withVal(key) { k in
            let rc = mdb_del(txn, dbis[db.rawValue], &k, nil)
            if rc != 0 && rc != MDB_NOTFOUND { throw LMDBError(code: rc, op: "delete from \(db.name)") }
        }
    }

    /// Empties a database.
    func clear(_ db: IndexDB) throws {
        let rc = mdb_drop(txn, dbis[db.rawValue], 0)
        if rc != 0 { throw LMDBError(code: rc, op: "clear \(db.name)") }
    }

    /// Calls `body` for every key starting with `prefix`, in key order; `body` returns false to stop.
    func forEach(_ db: IndexDB, prefix: [UInt8] = [], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        var cp: OpaquePointer?
        var rc = mdb_cursor_open(txn, dbis[db.rawValue], &cp)
        guard rc == 0, let cursor = cp else { throw LMDBError(code: rc, op: "open cursor on \(db.name)") }
        defer { mdb_cursor_close(cursor) }
        var k = MDB_val()
        var v = MDB_val()
        if prefix.isEmpty {
            rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST)
        } else {
            rc = LMDBTxn.withVal(prefix) { p in
                k = p
                return mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE)
            }
        }
        while rc == 0 {
            let key = LMDBTxn.bytes(k)
            if !prefix.isEmpty && !key.starts(with: prefix) { return }
            if try !body(key, LMDBTxn.bytes(v)) { return }
            rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)
        }
        if rc != MDB_NOTFOUND { throw LMDBError(code: rc, op: "scan \(db.name)") }
    }
}

extension LMDBEnv {
    /// Closes the environment now; later transactions fail. Used by the registry and on rebuild.
    func close() { closeEnvironment() }
}
