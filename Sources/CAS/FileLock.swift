// OFD locks on files in STORE/locks, held only for ref updates, index creation, GC and claims on work. Each lock has
// its own descriptor, so threads of one process exclude each other like processes and hosts do.
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// A held lock; released by `unlock()` or when the value is destroyed.
public final class FileLock {
    public let path: String
    private var fd: Int32

    /// Opens (creating it if needed) `path` and takes the lock, waiting unless `wait` is false.
    /// Throws CASError.locked when `wait` is false and another process holds it.
    /// With `byte`, only that byte of the file is locked, so one file holds many independent locks.
    public init(path: String, byte: Int64? = nil, exclusive: Bool = true, wait: Bool = true) throws {
        self.path = path
        // 0666 before umask: in a group store every member must be able to take the lock.
        var f = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        if f < 0 && (errno == EACCES || errno == EROFS) && !exclusive {
            f = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        }
        if f < 0 { throw CASError.io("open lock file", path, errno) }
        try FileLock.lock(f, path: path, byte: byte, exclusive: exclusive, wait: wait)
        fd = f
    }

    /// Takes the lock on `descriptor` (an open file, which the lock then owns and closes), for callers
    /// that open the file themselves (relative to a directory, without following links).
    public init(descriptor: Int32, path: String, exclusive: Bool = true, wait: Bool = true) throws {
        self.path = path
        try FileLock.lock(descriptor, path: path, exclusive: exclusive, wait: wait)
        fd = descriptor
    }

    /// Takes the OFD lock on `f`, closing it on failure. A filesystem that refuses locks (Lustre
    /// without `flock`, NFS without a lock manager; the failpoint "no-locks" plays one) is
    /// `CASError.locksUnsupported`, so callers can tell it from a lock held by someone else.
    private static func lock(_ f: Int32, path: String, byte: Int64? = nil, exclusive: Bool, wait: Bool) throws {
        // The failpoint plays a store's filesystem: the store's locks, not a local index's.
        let refused = Failpoint.armed("no-locks") && path.contains("/locks/")
        func take() -> Int32 {
            if let byte { return ud_ofd_lock_byte(f, exclusive ? 1 : 0, wait ? 1 : 0, byte) }
            return ud_ofd_lock(f, exclusive ? 1 : 0, wait ? 1 : 0)
        }
        var rc = refused ? -1 : take()
        var e = refused ? ENOLCK : errno
        if rc != 0 && e == EINTR {
            rc = take()
            e = errno
        }
        guard rc != 0 else { return }
        _ = close(f)
        if e == EAGAIN || e == EACCES { throw CASError.locked(path) }
        if e == ENOLCK || e == ENOSYS || e == EOPNOTSUPP || e == EINVAL {
            throw CASError.locksUnsupported(path: path, refused: "the lock was not taken")
        }
        throw CASError.io("lock", path, e)
    }

    /// Releases the lock (closing the descriptor drops it). Safe to call twice.
    public func unlock() {
        if fd >= 0 {
            _ = ud_ofd_unlock(fd)
            _ = close(fd)
            fd = -1
        }
    }

    deinit { unlock() }

    /// Runs `body` holding the lock on `path`, or without it where the filesystem refuses locks: for
    /// short ref and layer.json updates, which are atomic renames of their own and stay correct
    /// unlocked except for the index's staleness counter (the index resyncs from the files). GC and
    /// rmi's deletions never run unlocked.
    public static func withIfSupported<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let lock: FileLock
        do { lock = try FileLock(path: path) } catch CASError.locksUnsupported { return try body() }
        defer { lock.unlock() }
        return try body()
    }

    /// Runs `body` while holding the lock on `path`.
    public static func with<T>(_ path: String, exclusive: Bool = true, _ body: () throws -> T) throws -> T {
        let lock = try FileLock(path: path, exclusive: exclusive)
        defer { lock.unlock() }
        return try body()
    }
}
