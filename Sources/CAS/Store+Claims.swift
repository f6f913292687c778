// Claims on work that several pulls may want to do at once (downloading and unpacking one layer): the
// first takes the claim and does it, the others wait and then find it done instead of doing it again.
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// Runs `body` holding this store's claim on `digest`. While another thread, process or host holds
    /// it, waits, calling `waiting` once and giving up with `CASError.locked` as soon as `cancelled`
    /// says so. Where the store's filesystem refuses locks, `body` runs at once: the work it guards is
    /// idempotent and would only be done twice.
    ///
    /// A claim is one byte of STORE/locks/claims.lock, at an offset taken from the digest, so claims
    /// need no file per digest (which a member's umask could make unusable to the others) and a
    /// killed holder's claim goes with its process. On a kernel without OFD locks (FileLock falls back
    /// to POSIX locks) a claimant's close can drop another thread's claim of the same process: the
    /// layer is then fetched twice, never lost.
    public func withClaim<T>(on digest: Digest, waiting: (() -> Void)? = nil, cancelled: () -> Bool = { false },
                             _ body: () throws -> T) throws -> T {
        let path = layout.claimsLock
        // 40 bits of the digest: far apart for distinct digests, and within what NFS locks take.
        let offset = digest.rawBytes.prefix(5).reduce(Int64(0)) { $0 << 8 | Int64($1) }
        var told = false
        while true {
            let lock: FileLock
            do {
                lock = try FileLock(path: path, byte: offset, wait: false)
            } catch CASError.locksUnsupported {
                return try body()
            } catch CASError.locked {
                if cancelled() { throw CASError.locked(path) }
                if !told { waiting?(); told = true }
                // Polled rather than waited for, so a cancelled pull stops waiting at once.
                usleep(20_000)
                continue
            }
            defer { lock.unlock() }
            return try body()
        }
    }
}
