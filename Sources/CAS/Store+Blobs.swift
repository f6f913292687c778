// Blobs: ingest from a file, a descriptor or a stream, lookups that heal the index from the files,
// and marking use.
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// Read and write size of ingest. 1 MiB keeps syscalls few without hurting the kernel's copy:
    /// measured here, 4 MiB writes cost 4x the system time of 1 MiB writes for the same bytes
    /// (dd bs=4M 1.08 s vs bs=1M 0.23 s of system time for 512 MiB).
    static let ingestBufferSize = 1 << 20

    /// Starts streaming a blob into the store. See BlobWriter.
    public func beginBlob(expected: Digest? = nil, expectedSize: UInt64? = nil, mediaType: String? = nil) throws -> BlobWriter {
        try BlobWriter(store: self, expected: expected, expectedSize: expectedSize, mediaType: mediaType)
    }

    /// Stores the content of the file at `path`. When `expected` is given and already stored, returns
    /// at once without reading the file.
    public func ingest(fileAt path: String, expected: Digest? = nil, mediaType: String? = nil) throws -> BlobRecord {
        if let e = expected, let r = try blobRecord(e) { return r }
        let fd = try FileIO.open(path, O_RDONLY)
        defer { _ = close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        return try ingest(fd: fd, expected: expected, mediaType: mediaType)
    }

    /// Stores everything read from `fd` (from its current offset to EOF). When `expected` is given
    /// and already stored, returns at once without reading.
    public func ingest(fd: Int32, expected: Digest? = nil, expectedSize: UInt64? = nil,
                       mediaType: String? = nil) throws -> BlobRecord {
        if let e = expected, let r = try blobRecord(e) { return r }
        let w = try beginBlob(expected: expected, expectedSize: expectedSize, mediaType: mediaType)
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_size >= 2 * Store.ingestBufferSize {
            let target = w.rawTarget
            let pipeline = IngestPipeline(fd: target.fd, path: target.path, bufferSize: Store.ingestBufferSize)
            do { try pipeline.run(input: fd, writer: w, inputName: "input of blob \(expected?.description ?? "")") } catch {
                w.abort()
                throw error
            }
            return try w.commit()
        }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Store.ingestBufferSize, alignment: 4096)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf.baseAddress, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                w.abort()
                throw CASError.io("read", "input of blob \(expected?.description ?? "")", e)
            }
            if n == 0 { break }
            try w.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]))
        }
        return try w.commit()
    }

    /// Stores `bytes` (a manifest or config, typically).
    public func ingest(bytes: [UInt8], expected: Digest? = nil, mediaType: String? = nil) throws -> BlobRecord {
        if let e = expected, let r = try blobRecord(e) { return r }
        let w = try beginBlob(expected: expected, expectedSize: nil, mediaType: mediaType)
        try w.write(bytes)
        return try w.commit()
    }

    /// Whether the blob file exists (the file is the truth, so this is right on a shared store too).
    public func hasBlob(_ digest: Digest) -> Bool {
        FileIO.exists(layout.blobPath(digest))
    }

    /// Path of the blob file (whether or not it exists). Blob files are read-only: never write them.
    public func blobPath(_ digest: Digest) -> String { layout.blobPath(digest) }

    /// What the store knows about a blob, or nil when it is not stored. A blob file the index lacks
    /// (a crash after its rename) is added to the index here; an index entry without a file is dropped.
    public func blobRecord(_ digest: Digest) throws -> BlobRecord? {
        let indexed = try index.read { t in
            try t.get(.blobs, digest.rawBytes).flatMap { IndexCodec.blobRecord(digest, $0) }
        }
        let actual = files.blobRecord(digest, knownType: indexed.map { $0.mediaType })
        if actual != indexed { try? healBlob(digest, actual) }
        return actual
    }

    /// Every blob, sorted by digest, with the index brought in line with the files.
    public func blobs() throws -> [BlobRecord] {
        try reconcileBlobs().records
    }

    /// Sets the last use of a blob and of a layer with this digest (as blob or diff_id) to now.
    /// Best effort: in a group store another user's files cannot be touched, which only ages them.
    public func markUsed(_ digest: Digest) {
        if utimensat(AT_FDCWD, layout.blobPath(digest), nil, 0) == 0 { _ = try? blobRecord(digest) }
        if utimensat(AT_FDCWD, layout.layerManifest(digest), nil, 0) == 0 { _ = try? layerRecord(diffID: digest) }
    }

    // MARK: internals

    func healBlob(_ digest: Digest, _ actual: BlobRecord?) throws {
        try index.write { t in
            if let a = actual { try t.put(.blobs, digest.rawBytes, IndexCodec.blobValue(a)) } else {
                try t.delete(.blobs, digest.rawBytes)
            }
        }
    }

    /// Lists blob files and fixes the index where it differs; returns the records and how many
    /// index entries were fixed.
    func reconcileBlobs() throws -> (records: [BlobRecord], fixed: Int) {
        let onDisk = try files.blobDigests()
        var indexed = [Digest: BlobRecord]()
        var malformed = [[UInt8]]()
        try index.read { t in
            try t.forEach(.blobs) { k, v in
                if k.count == 32, let d = IndexCodec.digest(k, at: 0), let r = IndexCodec.blobRecord(d, v) {
                    indexed[d] = r
                } else {
                    malformed.append(k)
                }
                return true
            }
        }
        var records = [BlobRecord]()
        var puts = [BlobRecord]()
        for d in onDisk {
            let known = indexed.removeValue(forKey: d)
            guard let r = files.blobRecord(d, knownType: known.map { $0.mediaType }) else { continue }
            records.append(r)
            if r != known { puts.append(r) }
        }
        let stale = indexed.keys.map(\.rawBytes) + malformed
        if !puts.isEmpty || !stale.isEmpty {
            try index.write { t in
                for r in puts { try t.put(.blobs, r.digest.rawBytes, IndexCodec.blobValue(r)) }
                for k in stale { try t.delete(.blobs, k) }
            }
        }
        return (records, puts.count + stale.count)
    }
}
