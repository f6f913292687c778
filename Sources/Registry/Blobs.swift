// Downloading blobs (streamed, resumed with Range, verified by sha256) and checking for them with HEAD.
import CAS

extension RegistryClient {
    /// Downloads blob `digest` of `repository` into `sink`, resuming from `sink.offset` and after dropped
    /// connections. Returns the size once the bytes match `digest` (and `expectedSize` when given); on a
    /// mismatch it throws `RegistryError.digestMismatch` and the caller must not commit the sink.
    /// A `VerifyingBlobSink` is not hashed here: its commit checks the digest.
    @discardableResult
    public func fetchBlob(_ repository: String, digest: Digest, expectedSize: UInt64? = nil, into sink: any BlobSink) throws -> UInt64 {
        let what = "blob \(digest) of \(repository)"
        let hashing = try HashingSink(sink, limit: expectedSize, what: what)
        let r = try send("GET", "/v2/\(repository)/blobs/\(digest)", scope: Self.pullScope(repository), sink: hashing)
        let complete416 = r.status == 416 && expectedSize != nil && sink.offset == expectedSize
        guard r.status == 200 || r.status == 206 || complete416 else { throw failure(r, what: what) }
        if !hashing.hashes {
            if let expectedSize, sink.offset != expectedSize {
                throw RegistryError.sizeMismatch(what: what, expected: expectedSize, actual: sink.offset)
            }
            return sink.offset
        }
        let size = hashing.hasher.byteCount
        let actual = hashing.hasher.finish()
        if let expectedSize, size != expectedSize {
            throw RegistryError.sizeMismatch(what: what, expected: expectedSize, actual: size)
        }
        if actual != digest { throw RegistryError.digestMismatch(what: what, expected: digest, actual: actual) }
        return size
    }

    /// The size of blob `digest` in `repository`, or nil when the registry does not have it there.
    public func headBlob(_ repository: String, digest: Digest, scope: String? = nil) throws -> UInt64? {
        let r = try send("HEAD", "/v2/\(repository)/blobs/\(digest)", scope: scope ?? Self.pullScope(repository))
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw failure(r, what: "blob \(digest) of \(repository)") }
        return r.headers["Content-Length"].flatMap { UInt64($0) } ?? 0
    }
}
