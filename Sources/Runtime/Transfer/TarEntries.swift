// Reads a tar archive (plain, or compressed with gzip, zstd, xz or bzip2) entry by entry, with one
// 1 MiB buffer for the entries' data: the loop `load`, `import` and `install` share.
import CArchive

struct TarEntries {
    /// The archive's name in error messages.
    let source: String
    let archive: OpaquePointer
    let buffer: UnsafeMutableRawBufferPointer

    /// Calls `body` with each entry and its 1-based position; stops at the end or the first error.
    static func read(fd: Int32, source: String, _ body: (TarEntries, OpaquePointer, Int) throws -> Void) throws {
        let a = try BlobContent.layerReader()
        defer { archive_read_free(a) }
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        if archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK {
            throw RuntimeError.archiveRead(source, ArchiveWriter.errorText(a))
        }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buf.deallocate() }
        let reader = TarEntries(source: source, archive: a, buffer: buf)
        var entry: OpaquePointer?
        var count = 0
        while true {
            let rc = archive_read_next_header(a, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                throw RuntimeError.archiveRead(source, (count == 0 ? "" : "after \(count) entries: ") + ArchiveWriter.errorText(a))
            }
            count += 1
            try body(reader, entry, count)
        }
    }

    /// Feeds the current entry's data to `sink` in chunks; `path` names the entry in errors.
    func pump(_ path: String, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        while true {
            let n = archive_read_data(archive, buffer.baseAddress, buffer.count)
            if n < 0 { throw RuntimeError.archiveRead(source, "\(path): " + ArchiveWriter.errorText(archive)) }
            if n == 0 { return }
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    /// Skips the current entry's data.
    func skip() { _ = archive_read_data_skip(archive) }
}
