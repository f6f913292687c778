// Copying one file's content between open descriptors as cheaply as the filesystem allows: reflink
// (FICLONE), else copy_file_range, else read/write, of the data ranges only (holes stay holes); and the small *at() helpers materialisation shares.
import CAS
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// How content was copied; remembers what the filesystem refused so a refused method is not retried
/// for every file. One instance per thread.
final class FileCopier {
    enum Method: String { case reflink, copyRange = "copy_file_range", readWrite = "read/write" }

    private var tryReflink = true
    private var tryCopyRange = true
    private var buffer: UnsafeMutableRawPointer?
    private let bufferSize = 1 << 20
    private(set) var reflinked = 0
    private(set) var bytesCopied: UInt64 = 0

    deinit { buffer?.deallocate() }

    /// Copies all of `src` (from offset 0) into the empty `dst`. Throws RuntimeError.io naming `path`.
    func copy(from src: Int32, to dst: Int32, size: UInt64, path: String) throws {
        if size == 0 { return }
        if tryReflink {
            if ud_ficlone(dst, src) == 0 {
                reflinked += 1
                return
            }
            let e = errno
            // Filesystems without reflink (ext4, tmpfs, NFS) answer one of these; stop asking them.
            if e == EOPNOTSUPP || e == ENOTTY || e == EINVAL || e == EXDEV || e == ENOSYS || e == EPERM || e == EBADF {
                tryReflink = false
            } else {
                throw RuntimeError.io("reflink", path, e)
            }
        }
        // Holes stay holes: only the data ranges are copied and the file is then extended to its size,
        // so a sparse file of a 20 KiB layer does not become gigabytes on disk (copy_file_range and
        // read/write both fill holes with zeros).
        var end: UInt64 = 0
        for (offset, length) in dataRanges(src, size: size) {
            try copyRange(src, dst, offset: offset, length: length, path: path)
            end = offset + length
        }
        if end < size && ftruncate(dst, off_t(size)) != 0 { throw RuntimeError.io("truncate", path, errno) }
    }

    /// Files smaller than this are copied whole: their holes can cost little, and two lseek calls are saved.
    static let sparseCheckSize: UInt64 = 64 << 10
    /// SEEK_DATA and SEEK_HOLE (Linux ABI values; Glibc's Swift module does not export them).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    /// The (offset, length) ranges of `src` that hold data, by SEEK_DATA/SEEK_HOLE; the whole file where
    /// the filesystem cannot tell (or for a small file).
    func dataRanges(_ src: Int32, size: UInt64) -> [(UInt64, UInt64)] {
        if size < FileCopier.sparseCheckSize { return [(0, size)] }
        var ranges: [(UInt64, UInt64)] = []
        var offset: UInt64 = 0
        while offset < size {
            let data = lseek(src, off_t(offset), FileCopier.seekData)
            if data < 0 {
                // ENXIO: nothing but a hole up to the end; anything else: SEEK_DATA unsupported.
                if errno == ENXIO { break }
                return [(0, size)]
            }
            if UInt64(data) >= size { break }
            var hole = lseek(src, data, FileCopier.seekHole)
            if hole < 0 || UInt64(hole) > size { hole = off_t(size) }
            if hole <= data { return [(0, size)] }
            ranges.append((UInt64(data), UInt64(hole - data)))
            offset = UInt64(hole)
        }
        return ranges
    }

    /// Copies `length` bytes at `offset` of `src` to the same offset of `dst`.
    private func copyRange(_ src: Int32, _ dst: Int32, offset: UInt64, length: UInt64, path: String) throws {
        var done: UInt64 = 0
        if tryCopyRange {
            if lseek(src, off_t(offset), SEEK_SET) < 0 || lseek(dst, off_t(offset), SEEK_SET) < 0 {
                throw RuntimeError.io("seek", path, errno)
            }
            while done < length {
                let n = ud_copy_file_range(src, dst, Int(min(length - done, 1 << 30)))
                if n < 0 {
                    let e = errno
                    if done == 0 && (e == ENOSYS || e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == EPERM || e == EBADF) {
                        tryCopyRange = false
                        break
                    }
                    throw RuntimeError.io("copy", path, e)
                }
                if n == 0 { break }
                done += UInt64(n)
            }
            if tryCopyRange {
                bytesCopied += done
                return
            }
        }
        bytesCopied += try readWrite(src, dst, offset: offset, length: length, path: path)
    }

    private func readWrite(_ src: Int32, _ dst: Int32, offset: UInt64, length: UInt64, path: String) throws -> UInt64 {
        let buf: UnsafeMutableRawPointer
        if let b = buffer { buf = b } else {
            buf = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 4096)
            buffer = buf
        }
        var total: UInt64 = 0
        while total < length {
            let n = pread(src, buf, Int(min(UInt64(bufferSize), length - total)), off_t(offset + total))
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.io("read", path, errno)
            }
            if n == 0 { return total }
            var off = 0
            while off < n {
                let w = pwrite(dst, buf + off, n - off, off_t(offset + total) + off_t(off))
                if w < 0 {
                    if errno == EINTR { continue }
                    throw RuntimeError.io("write", path, errno)
                }
                off += w
            }
            total += UInt64(n)
        }
        return total
    }
}

/// Small *at() helpers; every open refuses to follow a symlink in the last component.
enum AtFile {
    /// O_PATH (Linux ABI value; Glibc's Swift module does not export it).
    static let oPath: Int32 = 0o10000000
    /// The times to give a file whose mtime is set: atime and mtime both `mtime`. Not UTIME_OMIT for
    /// the atime: some FUSE filesystems (bindfs) then set the mtime to now.
    static func times(_ mtime: timespec) -> [timespec] { [mtime, mtime] }
    static func times(seconds: Int64) -> [timespec] { times(timespec(tv_sec: Int(seconds), tv_nsec: 0)) }

    /// Opens directory `name` under `dirFD` without following a symlink (O_PATH: usable as the
    /// directory of *at() calls).
    static func openDirectory(_ dirFD: Int32, _ name: String) -> Int32 {
        openat(dirFD, name, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    }

    /// Opens directory `path` (relative, "" = `rootFD` itself, duplicated) beneath `rootFD`, refusing
    /// symlinks in every component: openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, else a walk.
    static func openBeneath(_ rootFD: Int32, _ path: String) -> Int32 {
        if path.isEmpty { return openat(rootFD, ".", oPath | O_DIRECTORY | O_CLOEXEC) }
        let fd = ud_openat_beneath(rootFD, path, oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 1)
        if fd >= 0 || errno != ENOSYS { return fd }
        var cur = openat(rootFD, ".", oPath | O_DIRECTORY | O_CLOEXEC)
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard cur >= 0 else { return -1 }
            let name = String(comp)
            if name == ".." { _ = close(cur); errno = EXDEV; return -1 }
            let next = openDirectory(cur, name)
            let e = errno
            _ = close(cur)
            errno = e
            cur = next
        }
        return cur
    }

    /// Sets the mtime of `name` under `dirFD` (see `times`), not following a symlink.
    static func setMtime(_ dirFD: Int32, _ name: String, _ mtime: Int64) {
        var t = times(seconds: mtime)
        _ = utimensat(dirFD, name, &t, AT_SYMLINK_NOFOLLOW)
    }

    static func setMtime(fd: Int32, _ mtime: timespec) {
        var t = times(mtime)
        _ = futimens(fd, &t)
    }

    /// Bits the process umask would clear, from /proc/self/status (calling umask() to read it would
    /// race with other threads); without /proc assume every bit may be cleared.
    static let umaskBits: mode_t = {
        guard let text = try? FileIO.readFile("/proc/self/status") else { return 0o777 }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            let digits = line.dropFirst(6).trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            if let v = mode_t(digits, radix: 8) { return v }
        }
        return 0o777
    }()

    /// The name of a directory entry.
    static func name(_ d: UnsafeMutablePointer<dirent>) -> String {
        withUnsafeBytes(of: d.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The entries of an open directory descriptor (any kind, O_PATH included), without "." and "..",
    /// with their d_type and d_ino.
    static func list(_ dirFD: Int32, path: String) throws -> [(name: String, type: UInt8, inode: UInt64)] {
        let fd = openat(dirFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", path, errno) }
        guard let dir = fdopendir(fd) else {
            let e = errno
            _ = close(fd)
            throw RuntimeError.io("opendir", path, e)
        }
        defer { closedir(dir) }
        var out: [(String, UInt8, UInt64)] = []
        while let d = readdir(dir) {
            let n = name(d)
            if n == "." || n == ".." { continue }
            out.append((n, d.pointee.d_type, UInt64(d.pointee.d_ino)))
        }
        return out
    }
}
