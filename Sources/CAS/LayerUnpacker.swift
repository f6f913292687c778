// Unpacks one layer tar stream (gzip, zstd, xz or plain, detected from content) into a directory,
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
    public func unpack(fd: Int32, sourceName: String, into root: String) throws -> LayerManifest {
        throw CASError.internalFailure("LayerUnpacker.unpack is being written")
    }
}
