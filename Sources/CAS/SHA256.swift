// Streaming SHA-256 over OpenSSL's libcrypto (through CShim, which loads it on first use), which uses
// the CPU's SHA instructions; short inputs in Swift (SmallSHA256).
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// An incremental SHA-256 hasher. Not thread-safe; one per stream.
public final class SHA256Hasher {
    private let ctx: OpaquePointer
    public private(set) var byteCount: UInt64 = 0

    public init() throws {
        guard let c = ud_sha256_new() else { throw CASError.internalFailure("cannot create a SHA-256 context: libcrypto (OpenSSL 3 or 1.1) cannot be loaded; install libssl3") }
        ctx = c
    }

    deinit { ud_sha256_free(ctx) }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        _ = ud_sha256_update(ctx, base, buffer.count)
        byteCount += UInt64(buffer.count)
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Returns the digest and resets the hasher for reuse.
    public func finish() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        _ = out.withUnsafeMutableBufferPointer { ud_sha256_final(ctx, $0.baseAddress) }
        byteCount = 0
        return Digest(bytes: out)
    }

    /// Appends the digest's 32 raw bytes to `out` and resets the hasher: for index keys, which hold raw
    /// bytes, without going through the hex text of a Digest.
    public func finish(appendingTo out: inout [UInt8]) {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { buf in
            _ = ud_sha256_final(ctx, buf.baseAddress?.assumingMemoryBound(to: UInt8.self))
        }
        withUnsafeBytes(of: &raw) { out.append(contentsOf: $0) }
        byteCount = 0
    }

    /// The digest of bytes in memory (names of content-addressed scratch files and caches). Up to
    /// 16 KiB in Swift: a run names its files without loading libcrypto.
    public static func digest(of bytes: [UInt8]) throws -> Digest {
        if bytes.count <= 16384 { return Digest(bytes: SmallSHA256.hash(bytes)) }
        let h = try SHA256Hasher()
        h.update(bytes)
        return h.finish()
    }

    /// Hashes a whole file from its start. Returns the digest and its size.
    public static func hash(fileAt path: String) throws -> (Digest, UInt64) {
        let fd = try FileIO.open(path, O_RDONLY)
        defer { _ = close(fd) }
        return try hash(fd: fd, path: path)
    }

    /// Hashes an open descriptor from its current offset to the end.
    public static func hash(fd: Int32, path: String) throws -> (Digest, UInt64) {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt64 = 0
        let rc = out.withUnsafeMutableBufferPointer { ud_sha256_fd(fd, $0.baseAddress, &n) }
        if rc != 0 { throw CASError.io("read", path, errno) }
        return (Digest(bytes: out), n)
    }
}
