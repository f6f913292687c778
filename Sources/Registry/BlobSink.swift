// Where downloaded blobs go: the BlobSink protocol (the store's BlobWriter will conform), a hashing
// adapter that verifies size and digest while streaming, and simple memory/file sinks.
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// A destination for one blob. `fetchBlob` writes into it, resumes from `offset`, and returns only when
/// the bytes match the digest; the caller commits the sink (e.g. renames into the store) only then.
public protocol BlobSink: AnyObject {
    /// Bytes written so far (the resume point).
    var offset: UInt64 { get }
    func write(_ chunk: UnsafeRawBufferPointer) throws
    /// Discard everything written; the next write is byte 0.
    func restart() throws
    /// Gives bytes 0..<offset to `body`, so a download begun by an earlier process can be hashed.
    /// Return false if the sink cannot read back; the download then restarts from byte 0.
    func replay(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool
}

/// A sink that hashes everything written to it and refuses, when the caller commits it, content
/// that does not match the digest (the store's BlobWriter does this). `fetchBlob` then does not hash
/// the bytes a second time: the digest is checked once, by the code that makes the blob visible.
public protocol VerifyingBlobSink: BlobSink {}

extension BlobSink {
    public func replay(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool { false }
}

/// Hashes what passes through and refuses more bytes than the descriptor announced.
final class HashingSink: BodySink {
    let inner: any BlobSink
    let hasher: SHA256Hasher
    let limit: UInt64?
    /// The blob, as errors name it ("blob sha256:… of repo").
    let what: String
    /// False for a VerifyingBlobSink, which hashes by itself.
    let hashes: Bool

    init(_ inner: any BlobSink, limit: UInt64?, what: String) throws {
        self.inner = inner
        self.limit = limit
        self.what = what
        hashes = !(inner is any VerifyingBlobSink)
        hasher = try SHA256Hasher()
        if inner.offset > 0 && hashes {
            let h = hasher
            if try !inner.replay({ h.update($0) }) || h.byteCount != inner.offset {
                _ = hasher.finish()
                try inner.restart()
            }
        }
    }

    var offset: UInt64 { inner.offset }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        if let limit, inner.offset + UInt64(chunk.count) > limit {
            throw RegistryError.sizeMismatch(what: what, expected: limit, actual: inner.offset + UInt64(chunk.count))
        }
        if hashes { hasher.update(chunk) }
        try inner.write(chunk)
    }

    func restart() throws {
        _ = hasher.finish()
        try inner.restart()
    }
}

/// Keeps the blob in memory (configs, small blobs, tests).
public final class MemoryBlobSink: BlobSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public var offset: UInt64 { UInt64(bytes.count) }
    public func write(_ chunk: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: chunk) }
    public func restart() throws { bytes.removeAll() }
    public func replay(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        try bytes.withUnsafeBytes { try body($0) }
        return true
    }
}

/// Appends to a file (created if missing, kept if present so a later run can resume).
public final class FileBlobSink: BlobSink {
    public let path: String
    private let fd: Int32
    public private(set) var offset: UInt64

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw RegistryError.sink("cannot open \(path): \(String(cString: strerror(errno)))") }
        let end = lseek(fd, 0, SEEK_END)
        offset = end > 0 ? UInt64(end) : 0
    }

    deinit { close(fd) }

    public func write(_ chunk: UnsafeRawBufferPointer) throws {
        guard var p = chunk.baseAddress else { return }
        var left = chunk.count
        while left > 0 {
            let n = Glibc.write(fd, p, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw RegistryError.sink("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            p += n
            left -= n
            offset += UInt64(n)
        }
    }

    public func restart() throws {
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            throw RegistryError.sink("cannot truncate \(path): \(String(cString: strerror(errno)))")
        }
        offset = 0
    }

    public func replay(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var position: off_t = 0
        while UInt64(position) < offset {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, min($0.count, Int(offset - UInt64(position))), position) }
            if n <= 0 { return false }
            try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            position += off_t(n)
        }
        return true
    }
}
