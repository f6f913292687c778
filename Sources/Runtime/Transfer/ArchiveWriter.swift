// Writing tar archives with libarchive (POSIX pax, plain, no compression) for export and save: one
// entry at a time, file data streamed from a descriptor or a chunk source, never held in memory.
import CArchive
import CAS
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// A tar archive being written to a file descriptor. Use from one thread; call `finish()` at the end.
final class ArchiveWriter {
    struct Owner {
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    private let archive: OpaquePointer
    private let entry: OpaquePointer
    /// What the archive is written to, for messages.
    let destination: String
    private var closed = false
    private let buffer: UnsafeMutableRawBufferPointer

    /// Starts a pax tar on `fd` (which stays owned by the caller); `zstd` compresses it (container
    /// deltas: zstd has no timestamp in its frame, so the same entries give the same bytes).
    init(fd: Int32, destination: String, zstd: Bool = false) throws {
        guard let a = archive_write_new() else { throw RuntimeError.internalFailure("cannot allocate a libarchive writer") }
        guard let e = archive_entry_new() else {
            archive_write_free(a)
            throw RuntimeError.internalFailure("cannot allocate a libarchive entry")
        }
        archive = a
        entry = e
        self.destination = destination
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        // Restricted pax: plain ustar headers, with pax extensions only where ustar cannot say it
        // (long names, big files, large ids), so every tar reader accepts the result.
        archive_write_set_format_pax_restricted(a)
        if zstd {
            if archive_write_add_filter_zstd(a) != ARCHIVE_OK {
                let text = ArchiveWriter.errorText(a)
                archive_entry_free(e)
                archive_write_free(a)
                buffer.deallocate()
                throw RuntimeError.archiveWrite(destination, "zstd compression is not available in this libarchive: \(text)")
            }
        } else {
            archive_write_add_filter_none(a)
        }
        archive_write_set_bytes_in_last_block(a, 1)
        if archive_write_open_fd(a, fd) != ARCHIVE_OK {
            let text = ArchiveWriter.errorText(a)
            archive_entry_free(e)
            archive_write_free(a)
            buffer.deallocate()
            throw RuntimeError.archiveWrite(destination, text)
        }
    }

    deinit {
        if !closed { archive_write_close(archive) }
        archive_write_free(archive)
        archive_entry_free(entry)
        buffer.deallocate()
    }

    static func errorText(_ a: OpaquePointer) -> String {
        if let s = archive_error_string(a) { return String(cString: s) }
        let e = archive_errno(a)
        return e != 0 ? String(cString: strerror(e)) : "unknown libarchive error"
    }

    private func fail(_ what: String) -> RuntimeError {
        RuntimeError.archiveWrite(destination, "\(what): \(ArchiveWriter.errorText(archive))")
    }

    private func begin(_ path: String, type: mode_t, perm: mode_t, owner: Owner, mtime: timespec, size: Int64) {
        archive_entry_clear(entry)
        archive_entry_set_pathname(entry, path)
        archive_entry_set_filetype(entry, UInt32(type))
        archive_entry_set_perm(entry, perm & 0o7777)
        archive_entry_set_uid(entry, Int64(owner.uid))
        archive_entry_set_gid(entry, Int64(owner.gid))
        archive_entry_set_mtime(entry, mtime.tv_sec, mtime.tv_nsec)
        archive_entry_set_size(entry, size)
    }

    private func writeHeader(_ path: String) throws {
        let rc = archive_write_header(archive, entry)
        if rc != ARCHIVE_OK && rc != ARCHIVE_WARN { throw fail("entry \(path)") }
    }

    func directory(_ path: String, perm: mode_t, owner: Owner, mtime: timespec) throws {
        begin(path, type: S_IFDIR, perm: perm, owner: owner, mtime: mtime, size: 0)
        try writeHeader(path)
    }

    func symlink(_ path: String, target: String, owner: Owner, mtime: timespec) throws {
        begin(path, type: S_IFLNK, perm: 0o777, owner: owner, mtime: mtime, size: 0)
        archive_entry_set_symlink(entry, target)
        try writeHeader(path)
    }

    /// A hard link to `target`, an entry written earlier in this archive.
    func hardlink(_ path: String, target: String, perm: mode_t, owner: Owner, mtime: timespec) throws {
        begin(path, type: S_IFREG, perm: perm, owner: owner, mtime: mtime, size: 0)
        archive_entry_set_hardlink(entry, target)
        try writeHeader(path)
    }

    func special(_ path: String, type: mode_t, perm: mode_t, owner: Owner, mtime: timespec, rdev: dev_t) throws {
        begin(path, type: type, perm: perm, owner: owner, mtime: mtime, size: 0)
        archive_entry_set_rdev(entry, rdev)
        try writeHeader(path)
    }

    /// A regular file of `size` bytes read from `fd` (from its current offset). Fails if the file
    /// is shorter than `size` (it changed while being archived); extra bytes are not written.
    /// `progress` gets the bytes written so far after each chunk.
    func file(_ path: String, perm: mode_t, owner: Owner, mtime: timespec, size: Int64, fd: Int32, source: String,
              progress: ((Int64) -> Void)? = nil) throws {
        begin(path, type: S_IFREG, perm: perm, owner: owner, mtime: mtime, size: size)
        try writeHeader(path)
        var left = size
        while left > 0 {
            let n = read(fd, buffer.baseAddress, min(buffer.count, Int(clamping: left)))
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.io("read", source, errno)
            }
            if n == 0 { throw RuntimeError.archiveWrite(destination, "\(source) became shorter while it was archived; try again when nothing writes to it") }
            try data(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), path)
            left -= Int64(n)
            progress?(size - left)
        }
    }

    /// A regular file whose `size` bytes come from `produce`, which calls its argument with
    /// consecutive chunks; it must deliver exactly `size` bytes.
    func file(_ path: String, perm: mode_t, owner: Owner = Owner(), mtime: timespec, size: Int64,
              produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        begin(path, type: S_IFREG, perm: perm, owner: owner, mtime: mtime, size: size)
        try writeHeader(path)
        var written: Int64 = 0
        try produce { chunk in
            guard written + Int64(chunk.count) <= size else {
                throw RuntimeError.archiveWrite(destination, "\(path) delivered more than its \(size) bytes")
            }
            try data(chunk, path)
            written += Int64(chunk.count)
        }
        if written != size {
            throw RuntimeError.archiveWrite(destination, "\(path) delivered \(written) of its \(size) bytes")
        }
    }

    /// A small regular file from memory.
    func file(_ path: String, bytes: [UInt8], perm: mode_t = 0o644, mtime: timespec = timespec()) throws {
        try file(path, perm: perm, mtime: mtime, size: Int64(bytes.count)) { sink in
            try bytes.withUnsafeBytes { try sink($0) }
        }
    }

    private func data(_ chunk: UnsafeRawBufferPointer, _ path: String) throws {
        var rest = chunk
        while !rest.isEmpty {
            let n = archive_write_data(archive, rest.baseAddress, rest.count)
            if n < 0 { throw fail("data of \(path)") }
            if n == 0 { throw fail("data of \(path) (nothing written)") }
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
        }
    }

    /// Writes the end-of-archive blocks.
    func finish() throws {
        guard !closed else { return }
        closed = true
        if archive_write_close(archive) != ARCHIVE_OK { throw fail("closing the archive") }
    }
}

/// Where an archive goes: a file (written as a temp file next to it and renamed into place only when
/// complete, so a failure never leaves a half archive under the name) or standard output.
final class ArchiveOutput {
    let fd: Int32
    let path: String?
    private let temp: String?
    private let refuseExisting: Bool
    private var done = false

    /// `path` "-" means standard output. With `refuseExisting` an existing file is an error
    /// (udocker's save refuses to overwrite).
    init(path: String, refuseExisting: Bool) throws {
        self.refuseExisting = refuseExisting
        if path == "-" {
            fd = 1
            self.path = nil
            temp = nil
            return
        }
        if refuseExisting && FileIO.exists(path) { throw RuntimeError.outputExists(path) }
        let dir = FileIO.parent(of: path)
        let t = (dir.isEmpty ? "." : dir) + "/." + FileIO.basename(of: path) + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let f = Glibc.open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if f < 0 { throw RuntimeError.io("create", path, errno) }
        fd = f
        self.path = path
        temp = t
    }

    var name: String { path ?? "standard output" }

    /// Makes the file visible under its name.
    func commit() throws {
        guard !done else { return }
        done = true
        guard let temp, let path else { return }
        if fsync(fd) != 0 && errno != EINVAL {
            let e = errno
            _ = close(fd); _ = unlink(temp)
            throw RuntimeError.io("fsync", path, e)
        }
        _ = close(fd)
        // No-replace when refusing: a file made under that name while we wrote is not clobbered.
        let rc = refuseExisting ? ud_rename_noreplace(AT_FDCWD, temp, AT_FDCWD, path) : rename(temp, path)
        if rc != 0 {
            let e = errno
            _ = unlink(temp)
            if e == EEXIST { throw RuntimeError.outputExists(path) }
            throw RuntimeError.io("rename", path, e)
        }
    }

    /// Drops the unfinished file.
    func abort() {
        guard !done else { return }
        done = true
        if let temp {
            _ = close(fd)
            _ = unlink(temp)
        }
    }

    deinit { abort() }
}
