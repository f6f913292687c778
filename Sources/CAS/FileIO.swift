// Thin, error-checked POSIX file helpers shared by the store: open, write-all, fsync, atomic file writes.
#if canImport(Glibc)
import Glibc
#endif
import CShim

public enum FileIO {
    public static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o644) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
        if fd < 0 { throw CASError.io("open", path, errno) }
        return fd
    }

    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws {
        guard let base = buffer.baseAddress else { return }
        var off = 0
        while off < buffer.count {
            let n = write(fd, base + off, buffer.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("write", path, errno)
            }
            off += n
        }
    }

    public static func fsync(_ fd: Int32, path: String) throws {
        if Glibc.fsync(fd) != 0 && errno != EINVAL { throw CASError.io("fsync", path, errno) }
    }

    /// fsync of a directory so a rename inside it is durable.
    public static func fsyncDirectory(_ path: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw CASError.io("open", path, errno) }
        defer { _ = close(fd) }
        try fsync(fd, path: path)
    }

    public static func mkdirs(_ path: String, mode: mode_t = 0o755) throws {
        // Usually the directory exists already (run's runtime directory, on every run).
        if isDirectory(path) { return }
        var current = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            current += "/" + comp
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw CASError.io("mkdir", current, errno)
            }
        }
    }

    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether `path` (links followed) is a regular file.
    public static func isRegularFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    public static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { _ = close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("read", path, errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return out
    }

    /// Writes a new scratch file (it must not exist), without fsync: for per-run files such as an
    /// engine's config, which nothing needs after a crash.
    public static func writeNew(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o600) throws {
        let fd = try open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        defer { _ = close(fd) }
        try bytes.withUnsafeBytes { b in try writeAll(fd, b, path: path) }
    }

    /// Writes a small file atomically and durably: temp file beside it, fsync, rename, fsync dir.
    /// The old file at `path` (perhaps a hard link into the store) is replaced, never written.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let dir = parent(of: path)
        let tmp = "\(dir)/.tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(basename(of: path))"
        let fd = try open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        do {
            try bytes.withUnsafeBytes { b in try writeAll(fd, b, path: tmp) }
            // Exactly `mode`, whatever the umask.
            _ = fchmod(fd, mode)
            try fsync(fd, path: tmp)
            _ = close(fd)
        } catch {
            _ = close(fd)
            _ = unlink(tmp)
            throw error
        }
        if rename(tmp, path) != 0 {
            let e = errno
            _ = unlink(tmp)
            throw CASError.io("rename", path, e)
        }
        try fsyncDirectory(dir)
    }

    public static func parent(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }

    public static func basename(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: i)...])
    }

    /// Directory entries except "." and "..". Missing directory gives an empty list.
    public static func listDirectory(_ path: String) throws -> [String] {
        guard let d = opendir(path) else {
            if errno == ENOENT { return [] }
            throw CASError.io("opendir", path, errno)
        }
        defer { closedir(d) }
        return names(in: d)
    }

    /// Entries except "." and ".." of the open directory `fd` (which stays open); `path` names it in errors.
    public static func listDirectory(fd: Int32, path: String) throws -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let d = fdopendir(copy) else {
            let e = errno
            if copy >= 0 { _ = close(copy) }
            throw CASError.io("opendir", path, e)
        }
        defer { closedir(d) }
        return names(in: d)
    }

    private static func names(in d: OpaquePointer) -> [String] {
        var out = [String]()
        while let e = readdir(d) {
            // d_name is a NUL-terminated fixed-size array; decode up to the NUL.
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out
    }

    /// Removes a tree, making directories writable first (store trees are kept read-only). It walks
    /// with directory descriptors and names, one directory open at a time, so a tree deeper than
    /// PATH_MAX (a hostile layer's) is removed too.
    public static func removeTree(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return }
            throw CASError.io("lstat", path, errno)
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else {
            if unlink(path) != 0 && errno != ENOENT { throw CASError.io("unlink", path, errno) }
            return
        }
        if (st.st_mode & 0o700) != 0o700 { _ = chmod(path, (st.st_mode & 0o7777) | 0o700) }
        var fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw CASError.io("open", path, errno) }
        defer { if fd >= 0 { close(fd) } }
        // The directories below `path` on the way down, each with the subdirectories it has left.
        var stack: [(name: [CChar], pending: [[CChar]])] = []
        var pending = try removeFiles(in: fd, path)
        while true {
            if let next = pending.popLast() {
                let child = openat(fd, next, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child < 0 { throw CASError.io("open", path + "/…/" + display(next), errno) }
                close(fd)
                fd = child
                stack.append((next, pending))
                pending = try removeFiles(in: fd, path)
                continue
            }
            guard let done = stack.popLast() else { break }
            let parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if parent < 0 { throw CASError.io("open", path + "/…/..", errno) }
            close(fd)
            fd = parent
            if unlinkat(fd, done.name, AT_REMOVEDIR) != 0 && errno != ENOENT {
                throw CASError.io("rmdir", path + "/…/" + display(done.name), errno)
            }
            pending = done.pending
        }
        close(fd)
        fd = -1
        if rmdir(path) != 0 && errno != ENOENT { throw CASError.io("rmdir", path, errno) }
    }

    /// A NUL-terminated name as text, for messages.
    private static func display(_ name: [CChar]) -> String {
        String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Unlinks every entry of the directory `fd` that is not a directory; returns the names of its
    /// subdirectories, made owner-rwx so they can be entered and emptied.
    private static func removeFiles(in fd: Int32, _ path: String) throws -> [[CChar]] {
        let copy = dup(fd)
        guard copy >= 0, let d = fdopendir(copy) else {
            let e = errno
            throw CASError.io("opendir", path + "/…", e)
        }
        defer { closedir(d) }
        var names: [[CChar]] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 }.map { CChar(bitPattern: $0) }) + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            names.append(name)
        }
        var directories: [[CChar]] = []
        for name in names {
            var st = stat()
            if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { continue }
                throw CASError.io("lstat", path + "/…/" + display(name), errno)
            }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                if (st.st_mode & 0o700) != 0o700 { _ = fchmodat(fd, name, (st.st_mode & 0o7777) | 0o700, 0) }
                directories.append(name)
            } else if unlinkat(fd, name, 0) != 0 && errno != ENOENT {
                throw CASError.io("unlink", path + "/…/" + display(name), errno)
            }
        }
        return directories
    }
}
