// Streaming ingest of one blob: bytes go to a temp file in STORE/tmp while being hashed; commit
// checks the digest, fsyncs, and renames the file into place without ever replacing a blob.
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// Writes one blob. Use from one thread; call `commit()` or `abort()` (dropping it aborts).
public final class BlobWriter {
    public let store: Store
    /// The digest the content must have, if known; commit fails when it differs.
    public let expected: Digest?
    public let expectedSize: UInt64?
    public let mediaType: String?
    /// The temp file being written.
    public let tempPath: String
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0

    private var fd: Int32
    private let hasher: SHA256Hasher
    private var finished = false
    /// A resumable partial file's lock (a dup of `fd`, see Store+Partial.swift): held until the file
    /// is renamed into place, kept or removed, so no other writer appends to it in between.
    private var lockFD: Int32 = -1
    /// Whether this writer writes a resumable partial file (kept by `keepPartial`).
    public let isPartial: Bool

    init(store: Store, expected: Digest?, expectedSize: UInt64?, mediaType: String?) throws {
        self.store = store; self.expected = expected; self.expectedSize = expectedSize; self.mediaType = mediaType
        hasher = try SHA256Hasher()
        isPartial = false
        (fd, tempPath) = try store.files.createTemp("blob")
    }

    /// Continues a partial file opened and locked by the caller (`fd`, `lockFD`): its first
    /// `prefix` bytes were already hashed into `hasher`, and writes go after them.
    init(store: Store, expected: Digest, expectedSize: UInt64, mediaType: String?, partialPath: String,
         fd: Int32, lockFD: Int32, hasher: SHA256Hasher, prefix: UInt64) {
        self.store = store; self.expected = expected; self.expectedSize = expectedSize; self.mediaType = mediaType
        self.hasher = hasher
        self.fd = fd
        self.lockFD = lockFD
        isPartial = true
        tempPath = partialPath
        bytesWritten = prefix
    }

    deinit { abort() }

    /// Appends bytes (hashing them on the way).
    public func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard !finished else { throw CASError.internalFailure("write to a finished blob writer") }
        guard buffer.count > 0 else { return }
        // An input longer than announced is cut short at once (no filling the disk from a broken
        // server); without an expected digest the check waits for commit, which can name the digest.
        if let es = expectedSize, let e = expected, bytesWritten + UInt64(buffer.count) > es {
            let n = bytesWritten + UInt64(buffer.count)
            abort()
            throw CASError.sizeMismatch(expected: es, actual: n, digest: e)
        }
        hasher.update(buffer)
        do { try FileIO.writeAll(fd, buffer, path: tempPath) } catch {
            abort()
            throw error
        }
        let first = bytesWritten == 0
        bytesWritten += UInt64(buffer.count)
        if first { Failpoint.hit("ingest-mid-write") }
    }

    /// Hashes bytes without writing them; with `writeUnhashed` the pipelined ingest splits `write`
    /// across two threads. The caller keeps the order of bytes the same for both.
    func hashOnly(_ buffer: UnsafeRawBufferPointer) throws {
        guard !finished else { throw CASError.internalFailure("write to a finished blob writer") }
        if let es = expectedSize, let e = expected, bytesWritten + UInt64(buffer.count) > es {
            throw CASError.sizeMismatch(expected: es, actual: bytesWritten + UInt64(buffer.count), digest: e)
        }
        hasher.update(buffer)
        bytesWritten += UInt64(buffer.count)
    }

    /// The descriptor and path of the temp file, for the pipelined ingest's writer thread.
    var rawTarget: (fd: Int32, path: String) { (fd, tempPath) }

    /// Discards everything written so far; the next write is byte 0 (a server that ignored a
    /// resume request sends the whole blob again).
    public func restart() throws {
        guard !finished else { throw CASError.internalFailure("restart of a finished blob writer") }
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            let e = errno
            abort()
            throw CASError.io("truncate", tempPath, e)
        }
        _ = hasher.finish()
        bytesWritten = 0
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Checks size and digest, makes the blob durable and visible, and records it in the index.
    /// If the blob is already in the store (another writer won), the temp file is dropped and the
    /// existing blob's record returned. On a mismatch nothing is stored and the temp file is removed.
    public func commit() throws -> BlobRecord {
        guard !finished else { throw CASError.internalFailure("commit of a finished blob writer") }
        let actual = hasher.finish()
        if let es = expectedSize, es != bytesWritten {
            abort()
            throw CASError.sizeMismatch(expected: es, actual: bytesWritten, digest: expected ?? actual)
        }
        if let e = expected, e != actual {
            abort()
            throw CASError.digestMismatch(expected: e, actual: actual)
        }
        let layout = store.layout
        var st = stat()
        do {
            try FileIO.fsync(fd, path: tempPath)
            // Read-only before it becomes visible: a blob is never written in place.
            if fchmod(fd, 0o444) != 0 { throw CASError.io("chmod", tempPath, errno) }
            if fstat(fd, &st) != 0 { throw CASError.io("stat", tempPath, errno) }
        } catch {
            abort()
            throw error
        }
        _ = close(fd)
        fd = -1
        finished = true
        Failpoint.hit("ingest-before-rename")

        var typeWritten = false
        do {
            if store.group != nil {
                try store.makeGroupDirectory(layout.blobDir(actual))
            } else {
                try store.files.makeDirectory(layout.blobDir(actual))
            }
            if let t = mediaType, !t.isEmpty, !FileIO.exists(layout.blobTypePath(actual)) {
                // Before the blob, so a visible blob never lacks its type; first writer's type wins.
                // Its directory is fsynced once below, for both names.
                typeWritten = try store.files.writeAtomically(layout.blobTypePath(actual), Array(t.utf8), mode: 0o444,
                                                              replace: false, syncDirectory: false)
            }
        } catch {
            _ = unlink(tempPath)
            throw error
        }
        let dest = layout.blobPath(actual)
        var record: BlobRecord
        if ud_rename_noreplace(AT_FDCWD, tempPath, AT_FDCWD, dest) == 0 {
            try FileIO.fsyncDirectory(layout.blobDir(actual))
            record = BlobRecord(digest: actual, size: UInt64(st.st_size), mediaType: mediaType.flatMap { $0.isEmpty ? nil : $0 },
                                lastUse: StoreFiles.mtime(st))
            if let t = store.files.mediaType(actual) { record.mediaType = t }
        } else {
            let e = errno
            _ = unlink(tempPath)
            if typeWritten { try? FileIO.fsyncDirectory(layout.blobDir(actual)) }
            guard e == EEXIST else { throw CASError.io("rename", dest, e) }
            guard let existing = store.files.blobRecord(actual) else { throw CASError.blobMissing(actual) }
            record = existing
        }
        releaseLock()
        Failpoint.hit("ingest-after-rename")
        // A failure here loses nothing: a lookup re-adds a blob file missing from the index.
        try? store.index.write { t in
            try t.put(.blobs, actual.rawBytes, IndexCodec.blobValue(record))
            Failpoint.hit("index-mid-txn")
        }
        return record
    }

    /// Drops the temp file; nothing is stored. Safe to call more than once.
    public func abort() {
        if fd >= 0 {
            _ = close(fd)
            fd = -1
        }
        if !finished {
            finished = true
            _ = unlink(tempPath)
        }
        releaseLock()
    }

    /// Closes a resumable partial file without removing it, so a later writer continues it
    /// (a sync cut off half-way). For other writers this is `abort()`.
    public func keepPartial() {
        // An empty partial file is no use to anyone: it goes, like any other temp file.
        guard isPartial, !finished, bytesWritten > 0 else { return abort() }
        finished = true
        if fd >= 0 {
            _ = close(fd)
            fd = -1
        }
        releaseLock()
    }


    private func releaseLock() {
        if lockFD >= 0 {
            _ = close(lockFD)
            lockFD = -1
        }
    }
}
