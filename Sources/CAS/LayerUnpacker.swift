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
    /// (the diff_id) and file by file, and another sets the times of written files and closes them
    /// (FileFinisher), so the calling thread does little more than `tar -x` does. Store rules: files read-only (original mode in the manifest),
    /// directories owner-rwx, mtimes set, nothing chowned, device nodes never created, whiteouts and
    /// opaque markers recorded but not created. Entries that would reach outside `root` are skipped and
    /// listed in `skipped`. A "./" entry is recorded as the directory "" (the root) but not applied.
    ///
    /// `verifiedBlobDigest` is the digest the caller has already verified the input bytes against (the
    /// store checks every blob at ingest). If the layer turns out to be uncompressed, the blob is the tar
    /// itself, so that digest is its diff_id and the stream is not hashed again; for a compressed layer it
    /// is ignored and the diff_id is computed. Pass it only for bytes actually verified against it.
    ///
    /// Throws `CASError.badLayer` for a truncated or corrupt layer and `CASError.io` when the disk fails;
    /// `root` may then be left partly filled, and the caller removes it.
    ///
    /// `outputLimit` bounds the decompressed bytes (input not verified yet); more is a `badLayer` error.
    public func unpack(fd: Int32, sourceName: String, into root: String,
                       verifiedBlobDigest: Digest? = nil, outputLimit: Int64? = nil) throws -> LayerManifest {
        let stream = try LayerStream(fd: fd, sourceName: sourceName, verifiedBlobDigest: verifiedBlobDigest,
                                     outputLimit: outputLimit)
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
        var entry: OpaquePointer?
        while true {
            rc = archive_read_next_header(tar, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                let place = writer.lastName.map { "after entry '\($0)'" } ?? "at the first entry"
                throw CASError.badLayer("\(sourceName): \(place): \(stream.failure ?? LayerStream.errorText(tar)) (the layer is truncated or corrupt; pull the image again)")
            }
            try writer.add(entry, from: tar)
            // The data of a skipped file named like a directory: libarchive sees each of its blocks as
            // a damaged header and steps over it. Any block that parses as a header or as the end of the
            // archive would make the layer mean something else to GNU tar: refused.
            var blocks = writer.takeDroppedDataBlocks()
            var unused: OpaquePointer?
            while blocks > 0 {
                rc = archive_read_next_header(tar, &unused)
                guard rc == ARCHIVE_RETRY else {
                    throw CASError.badLayer("\(sourceName): entry '\(writer.lastName ?? "")' is a regular file named like a directory and its data cannot be skipped (\(stream.failure ?? "it holds what reads as tar headers")): the layer is corrupt or ambiguous; pull the image again or rebuild it")
                }
                blocks -= 1
            }
        }
        try writer.finish()
        let (diffID, fileDigests) = try stream.finish()
        return LayerManifest(diffID: diffID, blobs: [], compression: stream.compression,
                             entries: try writer.entries(fileDigests: fileDigests), whiteouts: writer.whiteouts,
                             opaqueDirs: writer.opaqueDirs, skipped: writer.skipped)
    }
}
