// How the images and containers of a repository are named in a registry namespace by `sync docker://`
// (and back), and which scheme the registry of a docker:// location is spoken to with.
import CAS
import Registry

/// The naming rule of `sync docker://HOST[:PORT]/NAMESPACE`:
/// - image `NAME:TAG` is `NAMESPACE/NAME:TAG` (`test/busybox:oci` → `ns/test/busybox:oci`); a registry
///   host with a port at the start of NAME has its ':' written `__`, which no host name holds
///   (`127.0.0.1:5000/a/b` → `ns/127.0.0.1__5000/a/b`); an image known only by digest
///   (`name@sha256:HEX`) has the tag `sha256-HEX`;
/// - container `NAME` (its first name, else its id) is `NAMESPACE/container-NAME:latest`.
/// Coming back, the namespace is taken off again, so a round trip keeps every name. Whether a
/// repository holds a container is told by its manifest's annotation, never by its name.
public struct RegistryNaming: Sendable, Equatable {
    public var namespace: String

    public static let containerPrefix = "container-"
    public static let containerTag = "latest"

    public init(namespace: String) throws {
        self.namespace = namespace
        try Self.validate(namespace + "/x", shown: namespace, what: "namespace")
    }

    /// The registry repository and tag of local image `name`.
    public func remote(image name: ImageName) throws -> (repository: String, tag: String) {
        var parts = name.name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count > 1, let first = parts.first, first.contains(":") {
            guard !first.hasPrefix("["), first.split(separator: ":").count == 2 else {
                throw RuntimeError.syncRegistryName(name.description, reason: "its registry host '\(first)' cannot be written as a repository name")
            }
            parts[0] = first.replacingOccurrences(of: ":", with: "__")
        }
        let repository = namespace + "/" + parts.joined(separator: "/")
        var tag = name.tag
        if tag.hasPrefix("@sha256:") { tag = "sha256-" + tag.dropFirst("@sha256:".count) }
        try Self.validate(repository + ":" + tag, shown: name.description, what: "image")
        return (repository, tag)
    }

    /// The registry repository of a container: its first name when that is a valid repository name
    /// component, else its id.
    public func remote(container id: String, names: [String]) throws -> String {
        for candidate in names + [id] {
            let repository = namespace + "/" + Self.containerPrefix + candidate
            if (try? Self.validate(repository, shown: candidate, what: "container")) != nil { return repository }
        }
        throw RuntimeError.syncRegistryName(id, reason: "neither its names nor its id are valid registry names (lowercase letters, digits, '.', '_', '-')")
    }

    /// The local image name of registry repository `repository` and `tag`, or nil when the repository
    /// is not in the namespace.
    public func local(repository: String, tag: String) -> ImageName? {
        guard repository.hasPrefix(namespace + "/") else { return nil }
        var parts = repository.dropFirst(namespace.count + 1).split(separator: "/").map(String.init)
        guard !parts.isEmpty else { return nil }
        if parts.count > 1, let r = parts[0].range(of: "__", options: .backwards),
           !parts[0][r.upperBound...].isEmpty, parts[0][r.upperBound...].allSatisfy(\.isNumber) {
            parts[0].replaceSubrange(r, with: ":")
        }
        var localTag = tag
        let hex = tag.dropFirst("sha256-".count)
        if tag.hasPrefix("sha256-"), hex.count == 64, hex.allSatisfy(\.isHexDigit) { localTag = "@sha256:" + hex }
        return ImageName(name: parts.joined(separator: "/"), tag: localTag)
    }

    /// Whether `repository` is a direct child of the namespace named like a container.
    public func looksLikeContainer(_ repository: String) -> Bool {
        guard repository.hasPrefix(namespace + "/") else { return false }
        let rest = repository.dropFirst(namespace.count + 1)
        return rest.hasPrefix(Self.containerPrefix) && !rest.contains("/")
    }

    /// Checks `repository[:tag]` with Docker's reference rules (a host is put in front so the first
    /// component is never taken for one).
    static func validate(_ text: String, shown: String, what: String) throws {
        do { _ = try ImageReference.parse("localhost/" + text) } catch let RegistryError.invalidReference(_, why) {
            throw RuntimeError.syncRegistryName(shown, reason: "as a registry \(what) name: \(why)")
        }
    }

    /// The endpoint of a docker:// host: the scheme of --registry or the configured registry when
    /// that names the same host (as `push` does), else HTTPS. A loopback registry that answers HTTPS
    /// in plain HTTP is then spoken to in HTTP (`Session.reach`), as Docker trusts 127.0.0.0/8.
    public static func endpoint(host: String, registryOption: String?, configuration: Configuration) throws -> RegistryEndpoint {
        let parsed: RegistryEndpoint
        do { parsed = try RegistryEndpoint(url: host) } catch let e as RegistryError {
            throw RuntimeError.syncBadLocation("docker://\(host)", reason: "\(e)")
        }
        for option in [registryOption, configuration.registryOverride] {
            if let o = option, let e = try? RegistryEndpoint(url: o), e.host == parsed.host { return e }
        }
        return parsed
    }

    static func isLoopback(_ hostPort: String) -> Bool {
        var host = Substring(hostPort)
        if host.hasPrefix("["), let end = host.firstIndex(of: "]") { return host[host.index(after: host.startIndex)..<end] == "::1" }
        if let colon = host.lastIndex(of: ":") { host = host[..<colon] }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return host == "localhost" || (octets.count == 4 && octets[0] == "127" && octets.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) })
    }
}
