// Byte layouts of the index's keys and values (format 1, little-endian); docs/store-format.md
// describes the same layouts. Decoders return nil on malformed bytes instead of trusting the index.

enum IndexCodec {
    static let format = "1"

    static func u64(_ v: UInt64, into out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    static func u64(_ b: [UInt8], at off: Int) -> UInt64? {
        guard off >= 0, b.count >= off + 8 else { return nil }
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(b[off + i]) }
        return v
    }

    static func digest(_ b: [UInt8], at off: Int) -> Digest? {
        guard off >= 0, b.count >= off + 32 else { return nil }
        return Digest(bytes: b[off..<off + 32])
    }

    static func digests(_ b: [UInt8], from off: Int) -> [Digest]? {
        guard b.count >= off, (b.count - off) % 32 == 0 else { return nil }
        return stride(from: off, to: b.count, by: 32).map { Digest(bytes: b[$0..<$0 + 32]) }
    }

    // blobs: digest(32) -> size u64 | lastUse i64 | media type UTF-8 (may be empty)
    static func blobValue(_ r: BlobRecord) -> [UInt8] {
        var out = [UInt8]()
        u64(r.size, into: &out)
        u64(UInt64(bitPattern: r.lastUse), into: &out)
        out.append(contentsOf: Array((r.mediaType ?? "").utf8))
        return out
    }

    static func blobRecord(_ d: Digest, _ b: [UInt8]) -> BlobRecord? {
        guard let size = u64(b, at: 0), let last = u64(b, at: 8) else { return nil }
        let type = String(decoding: b[16...], as: UTF8.self)
        return BlobRecord(digest: d, size: size, mediaType: type.isEmpty ? nil : type, lastUse: Int64(bitPattern: last))
    }

    // refs: holder UTF-8 -> digests (32 each, sorted, unique)
    static func refValue(_ ds: [Digest]) -> [UInt8] {
        Array(Set(ds)).sorted().flatMap { $0.rawBytes }
    }

    // refcounts: digest(32) -> count u64
    static func countValue(_ n: Int) -> [UInt8] {
        var out = [UInt8]()
        u64(UInt64(n), into: &out)
        return out
    }

    // layers: diffID(32) -> fileCount u64 | bytes u64 | lastUse i64 | blobs (32 each, sorted)
    static func layerValue(_ r: LayerRecord) -> [UInt8] {
        var out = [UInt8]()
        u64(UInt64(r.fileCount), into: &out)
        u64(r.bytes, into: &out)
        u64(UInt64(bitPattern: r.lastUse), into: &out)
        for d in Array(Set(r.blobs)).sorted() { out.append(contentsOf: d.rawBytes) }
        return out
    }

    static func layerRecord(_ d: Digest, _ b: [UInt8]) -> LayerRecord? {
        guard let n = u64(b, at: 0), let bytes = u64(b, at: 8), let last = u64(b, at: 16),
              let blobs = digests(b, from: 24), n <= UInt64(Int.max) else { return nil }
        return LayerRecord(diffID: d, fileCount: Int(n), bytes: bytes, blobs: blobs, lastUse: Int64(bitPattern: last))
    }

    // files: diffID(32) | sha256(path)(32) -> file digest(32) | size u64 | path UTF-8.
    // The path is hashed in the key because LMDB keys are limited to 511 bytes and paths are not.
    static func fileKey(layer: Digest, path: String, hasher: SHA256Hasher) -> [UInt8] {
        fileKey(layer: layer.rawBytes, path: path, hasher: hasher)
    }

    /// The key with the layer's raw digest given: a layer's files all share it.
    static func fileKey(layer: [UInt8], path: String, hasher: SHA256Hasher) -> [UInt8] {
        var key = [UInt8]()
        key.reserveCapacity(64)
        key.append(contentsOf: layer)
        var path = path
        path.withUTF8 { hasher.update(UnsafeRawBufferPointer($0)) }
        hasher.finish(appendingTo: &key)
        return key
    }

    static func fileValue(digest: Digest, size: UInt64, path: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(40 + path.utf8.count)
        digest.appendRawBytes(to: &out)
        u64(size, into: &out)
        out.append(contentsOf: path.utf8)
        return out
    }

    static func fileRecord(_ b: [UInt8]) -> (path: String, digest: Digest, size: UInt64)? {
        guard let d = digest(b, at: 0), let size = u64(b, at: 32) else { return nil }
        return (String(decoding: b[40...], as: UTF8.self), d, size)
    }

    /// The files-database entries of a layer manifest: one per regular file with a digest.
    static func fileEntries(_ m: LayerManifest, hasher: SHA256Hasher) -> [([UInt8], [UInt8])] {
        let layer = m.diffID.rawBytes
        var out = [([UInt8], [UInt8])]()
        out.reserveCapacity(m.entries.count)
        for e in m.entries where e.kind == .file {
            guard let d = e.digest else { continue }
            out.append((fileKey(layer: layer, path: e.path, hasher: hasher),
                        fileValue(digest: d, size: e.size ?? 0, path: e.path)))
        }
        return out
    }
}
