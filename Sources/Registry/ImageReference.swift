// Image references ([HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST]) parsed with Docker's rules, and registry endpoints.
import CAS

/// Where a registry's API lives: scheme plus host[:port]. Docker Hub's name is "docker.io" but its API is
/// served by registry-1.docker.io.
public struct RegistryEndpoint: Hashable, Sendable, CustomStringConvertible {
    /// "https" or "http".
    public let scheme: String
    /// host[:port] as used in URLs and as the credentials key.
    public let host: String

    public static let dockerHub = RegistryEndpoint(scheme: "https", host: "registry-1.docker.io")

    public init(scheme: String, host: String) {
        self.scheme = scheme
        self.host = host
    }

    /// Parses "https://host[:port][/]", "http://…" or a bare "host[:port]" (https).
    public init(url text: String) throws {
        var rest = Substring(text)
        var scheme = "https"
        if rest.hasPrefix("https://") { rest = rest.dropFirst(8) }
        else if rest.hasPrefix("http://") { scheme = "http"; rest = rest.dropFirst(7) }
        else if rest.contains("://") { throw RegistryError.invalidURL(text) }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        // Docker Hub's v1 paths sometimes appear in configs ("https://index.docker.io/v1/").
        if rest.hasSuffix("/v1") || rest.hasSuffix("/v2") { rest = rest.dropLast(3) }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@"), !rest.contains(" "),
              RegistryEndpoint.validHostPort(rest) else { throw RegistryError.invalidURL(text) }
        let host = rest.lowercased()
        if host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
            self.init(scheme: scheme, host: RegistryEndpoint.dockerHub.host)
            return
        }
        self.init(scheme: scheme, host: host)
    }

    public var baseURL: String { "\(scheme)://\(host)" }
    public var isDockerHub: Bool { host == RegistryEndpoint.dockerHub.host }
    /// The name users write in references and in `login --registry`.
    public var displayName: String { isDockerHub ? "docker.io" : host }
    /// What `login --registry=` needs to reach this registry: a bare host means https, so an http
    /// registry is given with its scheme.
    public var loginName: String { scheme == "http" ? baseURL : displayName }
    public var description: String { baseURL }

    static func validHostPort(_ s: Substring) -> Bool {
        var hostPart = s
        if let colon = s.lastIndex(of: ":"), !s.hasPrefix("[") {
            let port = s[s.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber),
                  let p = Int(port), p > 0, p < 65536 else { return false }
            hostPart = s[..<colon]
        }
        guard !hostPart.isEmpty else { return false }
        if hostPart.hasPrefix("[") { return hostPart.hasSuffix("]") }
        guard hostPart.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else { return false }
        // DNS labels: none empty (no "..", no leading or trailing '.'), none starting or ending with '-'.
        return hostPart.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-")
        }
    }
}

/// A parsed image reference. `repository` is the path in the registry (e.g. "library/ubuntu").
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    public let registry: RegistryEndpoint
    public let repository: String
    public let tag: String?
    public let digest: Digest?

    public init(registry: RegistryEndpoint, repository: String, tag: String?, digest: Digest?) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// What to put after /manifests/: the digest when there is one, else the tag ("latest" by default).
    public var reference: String { digest?.description ?? tag ?? "latest" }

    /// Canonical form, e.g. "docker.io/library/ubuntu:latest" or "host:5000/a/b@sha256:…".
    public var description: String {
        var s = registry.displayName + "/" + repository
        if let tag { s += ":" + tag } else if digest == nil { s += ":latest" }
        if let digest { s += "@" + digest.description }
        return s
    }

    /// Parses `text` like Docker does. The registry is the host in the name when there is one, else
    /// `registryOverride` (`--registry=URL`), else `UDOCKER_REGISTRY` from `environment`, else docker.io.
    /// Single-component names get the `library/` prefix unless the name spells a registry host other
    /// than Docker Hub: as udocker 1.3 does, a registry from `--registry` or `UDOCKER_REGISTRY` is taken
    /// for a Docker Hub mirror (a pull-through cache keeps Docker Hub's paths).
    public static func parse(_ text: String, registryOverride: String? = nil,
                             environment: [String: String] = [:]) throws -> ImageReference {
        let fail = { (why: String) in RegistryError.invalidReference(text, why) }
        guard !text.isEmpty else { throw fail("the reference is empty") }
        guard text.utf8.count <= 512, text.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw fail("it contains spaces or non-ASCII characters, or is too long")
        }
        var rest = Substring(text)
        var digest: Digest? = nil
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(parsing: d) } catch {
                throw fail("'\(d)' is not a digest: expected sha256: followed by 64 lowercase hex digits")
            }
            rest = rest[..<at]
        }
        // The registry host is the first component when it looks like one (has '.' or ':', is
        // localhost, or has uppercase letters, which repository names cannot have).
        var host: Substring? = nil
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
                host = first
                rest = rest[rest.index(after: slash)...]
            }
        }
        var tag: String? = nil
        if let colon = rest.lastIndex(of: ":") {
            let t = String(rest[rest.index(after: colon)...])
            guard isValidTag(t) else {
                throw fail("the tag '\(t)' is invalid: up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'")
            }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw fail("the repository name is missing") }
        let components = rest.split(separator: "/", omittingEmptySubsequences: false)
        for c in components {
            if c.contains(where: \.isUppercase) { throw fail("repository names must be lowercase") }
            guard isValidComponent(c) else {
                throw fail("'\(c)' is not a valid name component: lowercase letters and digits, separated by '.', '_', '__' or '-'")
            }
        }
        let endpoint: RegistryEndpoint
        if let host {
            guard RegistryEndpoint.validHostPort(host) else { throw fail("'\(host)' is not a valid registry host") }
            endpoint = try RegistryEndpoint(url: String(host))
        } else if let o = registryOverride, !o.isEmpty {
            endpoint = try RegistryEndpoint(url: o)
        } else if let e = environment["UDOCKER_REGISTRY"], !e.isEmpty {
            endpoint = try RegistryEndpoint(url: e)
        } else {
            endpoint = .dockerHub
        }
        var repository = String(rest)
        if components.count == 1 && (host == nil || endpoint.isDockerHub) { repository = "library/" + repository }
        guard repository.utf8.count <= 255 else { throw fail("the repository name is longer than 255 characters") }
        return ImageReference(registry: endpoint, repository: repository, tag: tag, digest: digest)
    }

    static func isValidTag(_ t: String) -> Bool {
        guard let first = t.first, t.count <= 128, first != ".", first != "-" else { return false }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }

    /// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    static func isValidComponent(_ c: Substring) -> Bool {
        let b = Array(c.utf8)
        guard let f = b.first, let l = b.last, isAlnum(f), isAlnum(l) else { return false }
        var i = 0
        while i < b.count {
            if isAlnum(b[i]) { i += 1; continue }
            var j = i
            while j < b.count, !isAlnum(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok = sep.elementsEqual([46]) || sep.elementsEqual([95]) || sep.elementsEqual([95, 95]) || sep.allSatisfy { $0 == 45 }
            if !ok { return false }
            i = j
        }
        return true
    }

    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
}
