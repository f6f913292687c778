// Push primitives: cross-repository blob mount, monolithic and chunked blob upload, manifest upload.
import CAS

public enum MountResult: Sendable, Equatable {
    case mounted
    /// The registry did not mount and opened an upload session at this URL instead.
    case uploadStarted(location: String)
}

extension RegistryClient {
    /// Asks the registry to link blob `digest` from repository `from` into `repository` without upload.
    public func mountBlob(_ repository: String, digest: Digest, from: String) throws -> MountResult {
        let scope = Self.pushScope(repository) + " " + Self.pullScope(from)
        let r = try send("POST", "/v2/\(repository)/blobs/uploads/?mount=\(digest)&from=\(percentEncode(from))", scope: scope)
        switch r.status {
        case 201: return .mounted
        case 202:
            guard let loc = r.headers["Location"], let url = resolveURL(loc, against: r.url) else {
                throw RegistryError.uploadFailed("the registry started an upload without a Location")
            }
            return .uploadStarted(location: url)
        default: throw failure(r, what: "blob \(digest) of \(from)")
        }
    }

    /// Opens an upload session; returns its absolute URL.
    public func startUpload(_ repository: String) throws -> String {
        let r = try send("POST", "/v2/\(repository)/blobs/uploads/", scope: Self.pushScope(repository))
        guard r.status == 202, let loc = r.headers["Location"], let url = resolveURL(loc, against: r.url) else {
            throw failure(r, what: "upload to \(repository)")
        }
        return url
    }

    /// Uploads a blob: in one PUT when `chunkSize` is nil, else PATCH chunks then a closing PUT.
    /// `location` continues a session from `mountBlob`; otherwise a new one is opened. `progress`
    /// gets the bytes sent after each chunk. The registry's Docker-Content-Digest must be `digest`.
    public func uploadBlob(_ repository: String, digest: Digest, body: HTTPBody, chunkSize: UInt64? = nil,
                           location: String? = nil, progress: ((UInt64) -> Void)? = nil) throws {
        let scope = Self.pushScope(repository)
        var url = try location ?? startUpload(repository)
        let octet = HTTPHeaders([("Content-Type", "application/octet-stream")])
        var finalBody = body
        if let chunkSize, chunkSize > 0, let total = body.length {
            var start: UInt64 = 0
            while start < total {
                let n = min(chunkSize, total - start)
                var h = octet
                h.add("Content-Range", "\(start)-\(start + n - 1)")
                let part: HTTPBody
                switch body {
                case .bytes(let b): part = .bytes(Array(b[Int(start)..<Int(start + n)]))
                case .file(let path, let offset, _): part = .file(path: path, offset: offset + start, length: n)
                case .none: part = .none
                }
                let r = try send("PATCH", url, scope: scope, headers: h, body: part)
                guard r.status == 202, let loc = r.headers["Location"], let next = resolveURL(loc, against: r.url) else {
                    throw failure(r, what: "upload session of \(repository)")
                }
                url = next
                start += n
                progress?(start)
            }
            finalBody = .none
        }
        let put = url + (url.contains("?") ? "&" : "?") + "digest=\(percentEncode(digest.description))"
        let r = try send("PUT", put, scope: scope, headers: octet, body: finalBody)
        guard r.status == 201 else {
            if r.status == 400 { throw RegistryError.uploadFailed("the registry rejected blob \(digest): \(errorSummary(r))") }
            throw failure(r, what: "upload session of \(repository)")
        }
        if let header = r.headers["Docker-Content-Digest"], let claimed = try? Digest(parsing: header), claimed != digest {
            throw RegistryError.uploadDigestMismatch(what: "blob \(digest)", sent: digest, registry: claimed)
        }
        if let total = body.length { progress?(total) }
    }

    /// Uploads a manifest under `reference` (tag or digest); returns the digest the registry reports.
    @discardableResult
    public func putManifest(_ repository: String, reference: String, raw: [UInt8], mediaType: String) throws -> Digest {
        let r = try send("PUT", "/v2/\(repository)/manifests/\(reference)", scope: Self.pushScope(repository),
                         headers: HTTPHeaders([("Content-Type", mediaType)]), body: .bytes(raw))
        guard r.status == 201 else {
            if r.status == 400 { throw RegistryError.uploadFailed("the registry rejected the manifest: \(errorSummary(r))") }
            throw failure(r, what: "repository \(repository)")
        }
        let hasher = try SHA256Hasher()
        hasher.update(raw)
        let actual = hasher.finish()
        if let header = r.headers["Docker-Content-Digest"], let claimed = try? Digest(parsing: header), claimed != actual {
            throw RegistryError.uploadDigestMismatch(what: "the manifest", sent: actual, registry: claimed)
        }
        return actual
    }
}
