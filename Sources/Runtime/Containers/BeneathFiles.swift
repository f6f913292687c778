// The files of a container directory opened from its descriptor and never through a symbolic link
// (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, else one component at a time with O_NOFOLLOW), so a
// link swapped in after ContainerDirectoryCheck cannot send a write, a lock or a read to the host.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim

enum BeneathFiles {
    /// A directory descriptor and the path it stands for (for messages); closed by `close()`.
    struct Directory {
        let fd: Int32
        let path: String
        func close() { _ = Glibc.close(fd) }
    }

    /// `path` relative to `base` ("" for base itself); nil when `path` is not below `base`.
    static func relative(_ path: String, to base: String) -> String? {
        if path == base { return "" }
        guard path.hasPrefix(base + "/") else { return nil }
        return String(path.dropFirst(base.count + 1))
    }

    /// The error for a failed open of `rel` below container directory `base`: a link (ELOOP, EXDEV,
    /// ENOTDIR on the way) is a damaged container, anything else an I/O error.
    static func failure(_ op: String, base: String, rel: String, errno e: Int32) -> RuntimeError {
        if e == ELOOP || e == EXDEV || e == ENOTDIR || e == EMLINK {
            let what = rel.isEmpty ? "the container directory" : rel
            return .badContainer(path: base, reason: "\(what) is, or leads through, a symbolic link or not a directory; udocker follows no links in a container directory")
        }
        return .io(op, rel.isEmpty ? base : base + "/" + rel, e)
    }

    /// Opens directory `rel` below `base` (base itself not followed if it is a link), making missing
    /// directories with `mode` when `create`.
    static func directory(_ base: String, _ rel: String, create: Bool = false, mode: mode_t = 0o700) throws -> Directory {
        let baseFD = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if baseFD < 0 { throw failure("open", base: base, rel: "", errno: errno) }
        if rel.isEmpty { return Directory(fd: baseFD, path: base) }
        defer { _ = close(baseFD) }
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        let fd = ud_openat_beneath(baseFD, rel, flags, 0, 1)
        if fd >= 0 { return Directory(fd: fd, path: base + "/" + rel) }
        if errno != ENOSYS && !(errno == ENOENT && create) { throw failure("open", base: base, rel: rel, errno: errno) }
        // No openat2, or directories to make: one component at a time.
        var cur = dup(baseFD)
        if cur < 0 { throw failure("open", base: base, rel: "", errno: errno) }
        var done = ""
        for comp in rel.split(separator: "/", omittingEmptySubsequences: true) {
            let name = String(comp)
            done += (done.isEmpty ? "" : "/") + name
            if name == ".." || name == "." { _ = close(cur); throw failure("open", base: base, rel: done, errno: EXDEV) }
            var next = openat(cur, name, flags)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(cur, name, mode) != 0 && errno != EEXIST {
                    let e = errno
                    _ = close(cur)
                    throw failure("mkdir", base: base, rel: done, errno: e)
                }
                next = openat(cur, name, flags)
            }
            let e = errno
            _ = close(cur)
            if next < 0 { throw failure("open", base: base, rel: done, errno: e) }
            cur = next
        }
        return Directory(fd: cur, path: base + "/" + rel)
    }

    /// The directory holding `path` (below `base`) and the last component's name.
    static func parent(of path: String, beneath base: String, create: Bool = false) throws -> (Directory, String) {
        guard let rel = relative(path, to: base), !rel.isEmpty else {
            throw RuntimeError.internalFailure("\(path) is not below \(base)")
        }
        let parentRel = rel.contains("/") ? FileIO.parent(of: rel) : ""
        return (try directory(base, parentRel, create: create), FileIO.basename(of: rel))
    }

    /// Whether `path` (below `base`) exists, not following a link in any component.
    static func exists(_ path: String, beneath base: String) throws -> Bool {
        let dir: Directory, name: String
        do { (dir, name) = try parent(of: path, beneath: base) } catch RuntimeError.io(_, _, let e) where e == ENOENT {
            return false
        }
        defer { dir.close() }
        var st = stat()
        return fstatat(dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
    }

    /// The content of file `path` below `base`; a link anywhere on the way is refused.
    static func read(_ path: String, beneath base: String) throws -> [UInt8] {
        let (dir, name) = try parent(of: path, beneath: base)
        defer { dir.close() }
        let fd = openat(dir.fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw failure("open", base: base, rel: relative(path, to: base) ?? name, errno: errno) }
        defer { _ = close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.io("read", path, errno)
            }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// Writes `path` below `base` atomically (a new file beside it renamed over; a link there is
    /// replaced, never followed), making its parent directories when `makeParents`.
    static func write(_ path: String, beneath base: String, _ bytes: [UInt8], mode: mode_t = 0o644, makeParents: Bool = false) throws {
        let (dir, name) = try parent(of: path, beneath: base, create: makeParents)
        defer { dir.close() }
        let tmp = ".tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(name)"
        let fd = openat(dir.fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd < 0 { throw RuntimeError.io("open", dir.path + "/" + tmp, errno) }
        do {
            try ContainerStore.io { try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: dir.path + "/" + tmp) } }
            _ = fchmod(fd, mode)
            try ContainerStore.io { try FileIO.fsync(fd, path: dir.path + "/" + tmp) }
            _ = close(fd)
        } catch {
            _ = close(fd)
            _ = unlinkat(dir.fd, tmp, 0)
            throw error
        }
        if renameat(dir.fd, tmp, dir.fd, name) != 0 {
            let e = errno
            _ = unlinkat(dir.fd, tmp, 0)
            throw RuntimeError.io("rename", path, e)
        }
        _ = fsync(dir.fd)
    }

    /// Writes a new scratch file `path` below `base` (it must not exist), without fsync: for per-run
    /// files such as an engine's config, which nothing needs after a crash.
    static func writeNew(_ path: String, beneath base: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let (dir, name) = try parent(of: path, beneath: base)
        defer { dir.close() }
        let fd = openat(dir.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        if fd < 0 { throw failure("open", base: base, rel: relative(path, to: base) ?? name, errno: errno) }
        defer { _ = close(fd) }
        try ContainerStore.io { try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: path) } }
    }

    /// An exclusive lock on `path` below `base` (made, with its directories, when missing); a link
    /// there is refused rather than opened.
    static func lock(_ path: String, beneath base: String) throws -> FileLock {
        let (dir, name) = try parent(of: path, beneath: base, create: true)
        defer { dir.close() }
        // 0666 before umask, as FileLock makes its files.
        let fd = openat(dir.fd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o666)
        if fd < 0 { throw failure("open lock file", base: base, rel: relative(path, to: base) ?? name, errno: errno) }
        return try ContainerStore.io { try FileLock(descriptor: fd, path: path) }
    }

    /// Makes directory `rel` below `base` (and its parents) and returns its descriptor.
    static func makeDirectory(_ base: String, _ rel: String, mode: mode_t = 0o700) throws -> Directory {
        try directory(base, rel, create: true, mode: mode)
    }
}
