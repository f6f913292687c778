// Resumable blobs: a large blob received by sync is written to STORE/tmp/partial.<hex>, which
// outlives the process, so a transfer cut off half-way continues from the bytes already there.
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// The partial file of `digest`. Its name has no owner (TempName), so the temp sweep removes it
    /// only when it is a day old: long enough for a rerun, short enough not to keep garbage.
    public func partialBlobPath(_ digest: Digest) -> String { layout.tmpDir + "/partial." + digest.hex }

    /// How many bytes of `digest` a partial file holds (0 when none), without opening it for writing.
    public func partialBlobSize(_ digest: Digest) -> UInt64 {
        var st = stat()
        guard lstat(partialBlobPath(digest), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return 0 }
        return UInt64(st.st_size)
    }

    /// A writer that continues the partial file of `digest` (creating it when there is none): the
    /// bytes already there are read and hashed first, and `bytesWritten` says where to go on. Nil
    /// when another process is writing that file now (the caller then uses `beginBlob`). A partial
    /// file longer than `expectedSize` is emptied. The digest is checked on commit like any blob's;
    /// a mismatch removes the file, so the next attempt starts from byte 0.
    public func beginResumableBlob(expected: Digest, expectedSize: UInt64, mediaType: String?) throws -> BlobWriter? {
        let path = partialBlobPath(expected)
        // Open, lock, then check that the name still leads to the file locked: a writer that held
        // the lock may have renamed it into the store (or removed it) meanwhile.
        for _ in 0..<8 {
            let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if fd < 0 {
                if errno == EACCES { return nil }   // a finished blob, read-only: another writer won
                throw CASError.io("open", path, errno)
            }
            let lockFD = dup(fd)
            if lockFD < 0 {
                let e = errno
                _ = close(fd)
                throw CASError.io("dup", path, e)
            }
            if flock(lockFD, LOCK_EX | LOCK_NB) != 0 {
                _ = close(lockFD); _ = close(fd)
                return nil
            }
            var held = stat(), named = stat()
            guard fstat(fd, &held) == 0, lstat(path, &named) == 0, held.st_ino == named.st_ino, held.st_dev == named.st_dev,
                  (held.st_mode & 0o222) != 0 else {
                _ = close(lockFD); _ = close(fd)
                continue
            }
            do {
                let hasher = try SHA256Hasher()
                var prefix = UInt64(held.st_size)
                if prefix > expectedSize {
                    if ftruncate(fd, 0) != 0 { throw CASError.io("truncate", path, errno) }
                    prefix = 0
                } else if prefix > 0 {
                    prefix = try Self.hashPrefix(fd: fd, length: prefix, into: hasher, path: path)
                }
                if lseek(fd, off_t(prefix), SEEK_SET) < 0 { throw CASError.io("seek", path, errno) }
                return BlobWriter(store: self, expected: expected, expectedSize: expectedSize, mediaType: mediaType,
                                  partialPath: path, fd: fd, lockFD: lockFD, hasher: hasher, prefix: prefix)
            } catch {
                _ = close(lockFD); _ = close(fd)
                throw error
            }
        }
        return nil
    }

    /// Hashes the first `length` bytes of `fd`; a file that reads short is cut to what was read.
    private static func hashPrefix(fd: Int32, length: UInt64, into hasher: SHA256Hasher, path: String) throws -> UInt64 {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Store.ingestBufferSize, alignment: 4096)
        defer { buf.deallocate() }
        var done: UInt64 = 0
        while done < length {
            let n = pread(fd, buf.baseAddress, min(buf.count, Int(length - done)), off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("read", path, errno)
            }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            done += UInt64(n)
        }
        if done < length, ftruncate(fd, off_t(done)) != 0 { throw CASError.io("truncate", path, errno) }
        return done
    }
}
