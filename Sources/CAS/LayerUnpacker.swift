// Unpacks one layer tar stream (gzip, zstd, xz, bzip2 or plain, detected from content) into a directory,
// safely against hostile entries, computing the diff_id and per-file digests in the same pass.
import CArchive
#if canImport(Glibc)
import Glibc
#endif

public struct LayerUnpacker: Sendable {
    public init() {}

    /// Unpacks the archive read from `fd` (from its current offset) into `root`, an existing empty
    /// directory. `sourceName` is used in messages. Returns the manifest; `blobs` is left empty for
    /// the caller to fill.
    ///
    /// One pass over the input: a worker thread decompresses into a ring of buffers; the calling thread
    /// parses the tar from those buffers and writes the tree; two more threads hash the same buffers, whole
    /// (the diff_id) and file by file, so the calling thread does little more than `tar -x` does. Store rules: files read-only (original mode in the manifest),
    /// directories owner-rwx, mtimes set, nothing chowned, device nodes never created, whiteouts and
    /// opaque markers recorded but not created. Entries that would reach outside `root` are skipped and
    /// listed in `skipped`. A "./" entry is recorded as the directory "" (the root) but not applied.
    ///
    /// Throws `CASError.badLayer` for a truncated or corrupt layer and `CASError.io` when the disk fails;
    /// `root` may then be left partly filled, and the caller removes it.
    public func unpack(fd: Int32, sourceName: String, into root: String) throws -> LayerManifest {
        let stream = try LayerStream(fd: fd, sourceName: sourceName)
        let writer = try LayerTreeWriter(root: root, sourceName: sourceName, stream: stream)
        guard let tar = archive_read_new() else {
            throw CASError.internalFailure("cannot allocate a libarchive reader")
        }
        defer { archive_read_free(tar) }
        archive_read_support_format_tar(tar)
        archive_read_support_format_gnutar(tar)
        try stream.start()
        defer { stream.stop() }

        let client = Unmanaged.passUnretained(stream).toOpaque()
        var rc = archive_read_open(tar, client, nil, LayerStream.readCallback, nil)
        if rc != ARCHIVE_OK && rc != ARCHIVE_WARN {
            throw CASError.badLayer("\(sourceName): \(stream.failure ?? LayerStream.errorText(tar)) (the layer is not a tar archive, or is truncated or corrupt; pull the image again)")
        }
        var lastName = ""
        var entry: OpaquePointer?
        while true {
            rc = archive_read_next_header(tar, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                let place = lastName.isEmpty ? "at the first entry" : "after entry '\(lastName)'"
                throw CASError.badLayer("\(sourceName): \(place): \(stream.failure ?? LayerStream.errorText(tar)) (the layer is truncated or corrupt; pull the image again)")
            }
            try writer.add(entry, from: tar)
            if let name = archive_entry_pathname(entry) { lastName = String(cString: name) }
        }
        try writer.finish()
        let (diffID, fileDigests) = try stream.finish()
        return LayerManifest(diffID: diffID, blobs: [], compression: stream.compression,
                             entries: try writer.entries(fileDigests: fileDigests), whiteouts: writer.whiteouts,
                             opaqueDirs: writer.opaqueDirs, skipped: writer.skipped)
    }
}
