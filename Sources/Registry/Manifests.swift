// Fetching manifests with content negotiation, verifying their digest, and resolving an index to the
// image manifest of one platform.
import CAS
import Foundation

extension RegistryClient {
    /// Fetches the manifest `reference` (tag or "sha256:…") of `repository`. The sha256 of the raw bytes
    /// must equal the requested digest and the registry's Docker-Content-Digest.
    public func fetchManifest(_ repository: String, reference: String) throws -> FetchedManifest {
        let r = try send("GET", "/v2/\(repository)/manifests/\(reference)", scope: Self.pullScope(repository),
                         headers: HTTPHeaders([("Accept", MediaType.manifestAccept)]))
        guard r.status == 200 else { throw failure(r, what: "manifest \(repository):\(reference)") }
        let hasher = try SHA256Hasher()
        hasher.update(r.body)
        var actual = hasher.finish()
        var type = r.headers["Content-Type"]
        if type == nil || type == "application/json" {
            type = nil
        }
        let parsedType = try FetchedManifest.parse(raw: r.body, mediaType: type, digest: actual).mediaType
        if parsedType == MediaType.dockerSchema1Signed || parsedType == MediaType.dockerSchema1,
           let payload = Self.schema1Payload(r.body) {
            // A signed schema 1 manifest is named by the digest of its payload without the signatures.
            hasher.update(payload)
            actual = hasher.finish()
        }
        let what = "manifest \(repository):\(reference)"
        if let requested = try? Digest(parsing: reference), requested != actual {
            throw RegistryError.digestMismatch(what: what, expected: requested, actual: actual)
        }
        if let header = r.headers["Docker-Content-Digest"], let claimed = try? Digest(parsing: header), claimed != actual {
            throw RegistryError.digestMismatch(what: what, expected: claimed, actual: actual)
        }
        return try FetchedManifest.parse(raw: r.body, mediaType: type, digest: actual)
    }

    /// Fetches `ref` and, when it is a manifest list / OCI index, the image manifest for `platform`.
    /// Returns the image manifest and, if one was involved, the index it was chosen from.
    public func resolveImage(_ ref: ImageReference, platform: Platform = .host) throws -> (manifest: FetchedManifest, index: FetchedManifest?) {
        let top = try fetchManifest(ref.repository, reference: ref.reference)
        guard case .index(let index) = top.content else { return (top, nil) }
        let entry = try index.select(platform)
        let image = try fetchManifest(ref.repository, reference: entry.digest.description)
        guard case .image = image.content else {
            throw RegistryError.badManifest("the index entry for \(platform) is not an image manifest (\(image.mediaType))")
        }
        return (image, top)
    }

    /// The signed payload of a JWS schema 1 manifest: raw[0..<formatLength] + formatTail.
    static func schema1Payload(_ raw: [UInt8]) -> [UInt8]? {
        struct Signed: Decodable { struct Sig: Decodable { let protected: String }; let signatures: [Sig]? }
        struct Protected: Decodable { let formatLength: Int; let formatTail: String }
        guard let s = try? JSONDecoder().decode(Signed.self, from: Data(raw)), let first = s.signatures?.first,
              let pdata = base64URLDecode(first.protected),
              let p = try? JSONDecoder().decode(Protected.self, from: pdata),
              p.formatLength >= 0, p.formatLength <= raw.count, let tail = base64URLDecode(p.formatTail) else { return nil }
        return Array(raw[0..<p.formatLength]) + Array(tail)
    }
}

func base64URLDecode(_ s: String) -> Data? {
    var b = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while b.count % 4 != 0 { b += "=" }
    return Data(base64Encoded: b)
}
