// Reading a stored layer blob as its uncompressed tar (gzip, zstd, xz, bzip2 or plain), hashed on
// the way so the caller can check it against the layer's diff_id.
import CArchive
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum BlobContent {
    /// Calls `sink` with the uncompressed bytes of the file at `path`, in order, and returns their
    /// sha256 and count. The compression (gzip, zstd, xz, bzip2 or none) is told by the first bytes.
    @discardableResult
    static func uncompressed(path: String, sink: (UnsafeRawBufferPointer) throws -> Void) throws -> (digest: Digest, size: UInt64) {
        let hasher = try cas { try SHA256Hasher() }
        var total: UInt64 = 0
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", path, errno) }
        defer { _ = close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        var magic = [UInt8](repeating: 0, count: 6)
        let got = pread(fd, &magic, 6, 0)
        if got < 0 { throw RuntimeError.io("read", path, errno) }
        if !isCompressed(Array(magic.prefix(got))) {
            try pump(hasher, &total, sink) { buf in
                while true {
                    let n = read(fd, buf.baseAddress, buf.count)
                    if n >= 0 { return n }
                    if errno != EINTR { throw RuntimeError.io("read", path, errno) }
                }
            }
            return (hasher.finish(), total)
        }
        let a = try layerReader()
        defer { archive_read_free(a) }
        archive_read_support_format_raw(a)
        var entry: OpaquePointer?
        guard archive_read_open_fd(a, fd, 1 << 20) == ARCHIVE_OK, archive_read_next_header(a, &entry) == ARCHIVE_OK else {
            throw RuntimeError.archiveRead(path, ArchiveWriter.errorText(a))
        }
        try pump(hasher, &total, sink) { buf in
            let n = archive_read_data(a, buf.baseAddress, buf.count)
            if n < 0 { throw RuntimeError.archiveRead(path, ArchiveWriter.errorText(a)) }
            return n
        }
        return (hasher.finish(), total)
    }

    /// Moves bytes from `fill` (which returns how many it put in the buffer, 0 at the end) to
    /// `sink` in 1 MiB chunks, hashing and counting them.
    private static func pump(_ hasher: SHA256Hasher, _ total: inout UInt64,
                             _ sink: (UnsafeRawBufferPointer) throws -> Void,
                             fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buf.deallocate() }
        while true {
            let n = try fill(buf)
            if n == 0 { return }
            let chunk = UnsafeRawBufferPointer(rebasing: buf[0..<n])
            hasher.update(chunk)
            total += UInt64(n)
            try sink(chunk)
        }
    }

    /// A libarchive reader with the decompression filters layers use (gzip, zstd, xz, bzip2) and
    /// no others: with every filter enabled libarchive would run external programs. The caller
    /// adds the formats it reads and frees the reader.
    static func layerReader() throws -> OpaquePointer {
        guard let a = archive_read_new() else { throw RuntimeError.internalFailure("cannot allocate a libarchive reader") }
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_filter_xz(a)
        archive_read_support_filter_bzip2(a)
        return a
    }

    /// The unpacker's message without its advice to pull again (the tar came from a file here).
    static func withoutPullHint(_ why: String) -> String {
        why.replacingOccurrences(of: "; pull the image again", with: "")
            .replacingOccurrences(of: ", pull the image again", with: "")
    }

    /// gzip, zstd, xz or bzip2 magic numbers.
    static func isCompressed(_ m: [UInt8]) -> Bool {
        func starts(_ p: [UInt8]) -> Bool { m.count >= p.count && Array(m.prefix(p.count)) == p }
        return starts([0x1f, 0x8b]) || starts([0x28, 0xb5, 0x2f, 0xfd]) || starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])
            || starts([0x42, 0x5a, 0x68])
    }

    /// Runs CAS calls, reporting their I/O failures as RuntimeError (other CAS errors pass through).
    static func cas<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch CASError.io(let op, let path, let err) {
            throw RuntimeError.io(op, path, err)
        }
    }
}
