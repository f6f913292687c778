// zstd for the metadata frames of a sync (offer, want, refs, report): libarchive writes and reads a
// raw zstd stream in memory, so no other compression library is linked.
import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

enum SyncCompression {
    /// The most a metadata frame may expand to: far above any real offer (a few hundred bytes per
    /// object), low enough that a hostile far end cannot make us allocate without bound.
    static let maxExpanded = 256 << 20

    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        guard let a = archive_write_new() else { throw RuntimeError.syncBadStream("cannot start zstd (libarchive cannot be loaded)") }
        defer { archive_write_free(a) }
        // zstd's bound is about len + len/256 + 64; libarchive adds no framing in the raw format.
        var out = [UInt8](repeating: 0, count: bytes.count + bytes.count / 128 + 4096)
        var used = 0
        let ok: Bool = out.withUnsafeMutableBytes { buf in
            guard archive_write_set_format_raw(a) == ARCHIVE_OK, archive_write_add_filter_zstd(a) == ARCHIVE_OK,
                  archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK,
                  archive_write_open_memory(a, buf.baseAddress, buf.count, &used) == ARCHIVE_OK,
                  let e = archive_entry_new() else { return false }
            defer { archive_entry_free(e) }
            archive_entry_set_pathname(e, "data")
            archive_entry_set_filetype(e, 0o100000)
            archive_entry_set_size(e, Int64(bytes.count))
            guard archive_write_header(a, e) == ARCHIVE_OK else { return false }
            let n = bytes.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            return n == bytes.count && archive_write_close(a) == ARCHIVE_OK
        }
        guard ok else { throw RuntimeError.syncBadStream("zstd compression failed: \(String(cString: archive_error_string(a)))") }
        return Array(out[0..<used])
    }

    static func decompress(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8] {
        guard let a = archive_read_new() else { throw RuntimeError.syncBadStream("cannot start zstd (libarchive cannot be loaded)") }
        defer { archive_read_free(a) }
        var entry: OpaquePointer?
        guard archive_read_support_filter_zstd(a) == ARCHIVE_OK, archive_read_support_format_raw(a) == ARCHIVE_OK,
              archive_read_open_memory(a, bytes.baseAddress, bytes.count) == ARCHIVE_OK,
              archive_read_next_header(a, &entry) == ARCHIVE_OK, archive_filter_code(a, 0) == ARCHIVE_FILTER_ZSTD else {
            throw RuntimeError.syncBadStream("a metadata frame is not a zstd stream")
        }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            if n < 0 { throw RuntimeError.syncBadStream("a metadata frame does not decompress: \(String(cString: archive_error_string(a)))") }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > maxExpanded { throw RuntimeError.syncBadStream("a metadata frame expands to more than \(maxExpanded) bytes") }
        }
        return out
    }
}
