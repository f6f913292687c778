// References: who holds which blobs and layers. The truth is one small JSON file per holder in
// STORE/refs, changed under the refs lock; the index mirrors them as refs and refcounts.
#if canImport(Glibc)
import Glibc
#endif

/// Holder names ("repo/<uuid>/image/busybox:latest", "pending/<host>/<pid>"): validation and file names.
public enum Holder {
    public static let maxLength = 400

    /// Whether `name` is a valid holder: 1-400 bytes of '/'-separated components, each non-empty,
    /// not "." or "..", made of letters, digits and . _ - : @ + = ,
    public static func isValid(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxLength else { return false }
        for comp in name.split(separator: "/", omittingEmptySubsequences: false) {
            if comp.isEmpty || comp == "." || comp == ".." { return false }
            for c in comp.unicodeScalars {
                let ok = (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
                    || ".-_:@+=,".unicodeScalars.contains(c)
                if !ok { return false }
            }
        }
        return true
    }

    /// The ref file name of a holder: sha256 of the name, so any valid name maps to a safe file name.
    static func fileName(_ holder: String) -> String {
        guard let h = try? SHA256Hasher() else { return "invalid.json" }
        h.update(Array(holder.utf8))
        return h.finish().hex + ".json"
    }

    /// The holder a pull of this process uses to reserve digests before downloading them, so GC
    /// cannot delete a blob between its ingest and the real ref. `tag` tells apart several pulls of
    /// one process ("pending/<host>/<pid>/<tag>").
    public static func pending(tag: String? = nil) -> String {
        let base = "pending/\(ProcessIdentity.host)/\(ProcessIdentity.pid)"
        return tag.map { base + "/" + $0 } ?? base
    }

    /// Whether `holder` is a reservation of a running process ("pending/..."). Such a ref lives as
    /// long as its process: after a system crash it is dead whatever the disk kept, so its changes
    /// need not be durable, only atomic.
    static func isPending(_ holder: String) -> Bool { holder.hasPrefix("pending/") }

    /// How long a reservation of a process on another host (which this host cannot check) is honoured
    /// after its last change: the same day temp files of other hosts are kept (TempName.maxAge).
    public static let foreignPendingLifetime: Int64 = TempName.maxAge

    /// Whether `holder` is a reservation of another host's process, last changed at `mtime`, that
    /// has outlived `foreignPendingLifetime`.
    static func isExpiredForeignPending(_ holder: String, mtime: Int64, now: Int64) -> Bool {
        let c = holder.split(separator: "/")
        guard c.count >= 3, c[0] == "pending", String(c[1]) != ProcessIdentity.host else { return false }
        return now - mtime > foreignPendingLifetime
    }

    /// Whether `holder` is a pending holder of a process that is gone (checked on this host only).
    public static func isDeadPending(_ holder: String) -> Bool {
        let c = holder.split(separator: "/")
        guard c.count >= 3, c[0] == "pending", let pid = Int32(c[2]) else { return false }
        return ProcessIdentity.isDead(host: String(c[1]), pid: pid)
    }
}

extension Store {
    /// Sets the digests (blobs or layer diff_ids) held by `holder`, replacing what it held before.
    public func setRef(holder: String, digests: [Digest]) throws {
        try changeRefs(holder, to: Array(Set(digests)).sorted()) { try writeRefFile(holder: holder, digests: digests) }
    }

    /// Removes a holder and its references. Removing an unknown holder is not an error.
    public func removeRef(holder: String) throws {
        try changeRefs(holder, to: nil) { try deleteRefFile(holder: holder) }
    }

    /// Every holder with its digests, sorted.
    public func refs() throws -> [String: [Digest]] {
        try syncRefsIfStale()
        var out = [String: [Digest]]()
        try index.read { t in
            try t.forEach(.refs) { k, v in
                out[String(decoding: k, as: UTF8.self)] = IndexCodec.digests(v, from: 0) ?? []
                return true
            }
        }
        return out
    }

    /// The digests held by one holder, or nil when it holds nothing.
    public func ref(holder: String) throws -> [Digest]? {
        try syncRefsIfStale()
        return try index.read { t in
            try t.get(.refs, Array(holder.utf8)).map { IndexCodec.digests($0, from: 0) ?? [] }
        }
    }

    /// How many holders reference `digest`.
    public func refCount(of digest: Digest) throws -> Int {
        try syncRefsIfStale()
        return try index.read { t in
            Int(try t.get(.refcounts, digest.rawBytes).flatMap { IndexCodec.u64($0, at: 0) } ?? 0)
        }
    }

    // MARK: internals

    /// Runs a change of the ref files under the refs lock: bump the generation first (so a crash
    /// after it leaves an index that knows it is stale), change the files, then mirror in the index.
    func changeRefs(_ holder: String, to new: [Digest]?, _ change: () throws -> Void) throws {
        guard Holder.isValid(holder) else {
            throw CASError.internalFailure("invalid holder name '\(holder)': use letters, digits, '/' and . _ - : @ + = ,")
        }
        try FileLock.withIfSupported(layout.refsLock) {
            let gen = files.refsGeneration() + 1
            // A reservation's change is not fsynced (see `Holder.isPending`). If a crash loses this
            // bump, the next durable change reuses the number and the index, a generation ahead or
            // on a dead reservation, resyncs or keeps a ref GC drops anyway.
            let durable = !Holder.isPending(holder)
            try files.writeAtomically(layout.refsGenerationFile, Array("\(gen)\n".utf8),
                                      syncFile: durable, syncDirectory: durable)
            try change()
            // The index is only a mirror: if this fails, the generation mismatch makes the next read resync.
            try? mirrorRefChange(holder, to: new, generation: gen)
        }
    }

    /// Applies one holder's change to the index when the index was current before it, else resyncs.
    func mirrorRefChange(_ holder: String, to new: [Digest]?, generation gen: UInt64) throws {
        let genKey = Array("refs-generation".utf8)
        let applied = try index.write { t -> Bool in
            let indexGen = try t.get(.meta, genKey).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) }
            guard indexGen == gen - 1 else { return false }
            let key = Array(holder.utf8)
            let old = Set(try t.get(.refs, key).flatMap { IndexCodec.digests($0, from: 0) } ?? [])
            let newSet = Set(new ?? [])
            for d in old.subtracting(newSet) {
                let n = try t.get(.refcounts, d.rawBytes).flatMap { IndexCodec.u64($0, at: 0) } ?? 0
                if n <= 1 { try t.delete(.refcounts, d.rawBytes) } else {
                    try t.put(.refcounts, d.rawBytes, IndexCodec.countValue(Int(n - 1)))
                }
            }
            for d in newSet.subtracting(old) {
                let n = try t.get(.refcounts, d.rawBytes).flatMap { IndexCodec.u64($0, at: 0) } ?? 0
                try t.put(.refcounts, d.rawBytes, IndexCodec.countValue(Int(n + 1)))
            }
            if let new { try t.put(.refs, key, IndexCodec.refValue(new)) } else { try t.delete(.refs, key) }
            try t.put(.meta, genKey, Array(String(gen).utf8))
            return true
        }
        if !applied { try resyncRefsLocked(generation: gen) }
    }

    func writeRefFile(holder: String, digests: [Digest]) throws {
        let rf = RefFile(format: 1, holder: holder, digests: Array(Set(digests)).sorted())
        let durable = !Holder.isPending(holder)
        try files.writeAtomically(layout.refFile(holderHash: String(Holder.fileName(holder).dropLast(5))),
                                  try StoreFiles.encode(rf), syncFile: durable, syncDirectory: durable)
    }

    func deleteRefFile(holder: String) throws {
        let path = layout.refsDir + "/" + Holder.fileName(holder)
        if unlink(path) != 0 {
            if errno == ENOENT { return }
            throw CASError.io("unlink", path, errno)
        }
        if !Holder.isPending(holder) { try FileIO.fsyncDirectory(layout.refsDir) }
    }

    /// Rewrites the index's refs from the ref files; the caller holds the refs lock.
    func resyncRefsLocked(generation: UInt64) throws {
        let all = try files.refs()
        try index.write { t in try StoreIndex.putRefs(t, all, generation: generation) }
    }

    /// Refreshes the index's refs when the ref files changed behind it (another host on a shared
    /// store, or a crash between a ref file write and the index update).
    func syncRefsIfStale() throws {
        let fileGen = files.refsGeneration()
        let indexGen = try index.read { t in
            try t.get(.meta, Array("refs-generation".utf8)).flatMap { UInt64(String(decoding: $0, as: UTF8.self)) }
        }
        if indexGen == fileGen { return }
        try FileLock.withIfSupported(layout.refsLock) {
            try resyncRefsLocked(generation: files.refsGeneration())
        }
    }
}
