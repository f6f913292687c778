// The one error type of the Registry module; every message says what went wrong and what the user can do.
import CAS

public enum RegistryError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidReference(String, String)
    case invalidURL(String)
    case transport(url: String, code: Int, message: String)
    case tls(url: String, message: String)
    /// An https:// URL whose server answered in plain HTTP (url, its scheme://host:port in http).
    case plainHTTP(url: String, http: String)
    case httpStatus(url: String, status: Int, message: String)
    case unauthorized(registry: RegistryEndpoint, hadCredentials: Bool, detail: String)
    case authenticationRequired(registry: RegistryEndpoint)
    case tokenFailure(realm: String, detail: String)
    case notFound(what: String, registry: String)
    case digestMismatch(what: String, expected: Digest, actual: Digest)
    case sizeMismatch(what: String, expected: UInt64, actual: UInt64)
    case badManifest(String)
    case unsupportedMediaType(String)
    case noMatchingPlatform(requested: String, available: [String])
    case invalidPlatform(String)
    case sink(String)
    case retriesExhausted(url: String, attempts: Int, last: String)
    case tooManyRedirects(String)
    case uploadFailed(String)
    /// After an upload, the registry names the data by another digest than the one sent.
    case uploadDigestMismatch(what: String, sent: Digest, registry: Digest)
    /// `push` of an image it cannot upload as stored (schema 1, a missing blob).
    case cannotPush(String)
    /// A layer whose unpacked content is not what the image config says (rootfs.diff_ids).
    case diffIDMismatch(layer: Digest, expected: Digest, actual: Digest)
    case badConfig(String)
    /// The store refused or failed to keep something (its message says why).
    case store(String)
    /// A registry broke one of the limits that bound a request (`what` says which and its value,
    /// `key` is the udocker.conf key that sets it).
    case limitExceeded(url: String, what: String, key: String)

    public var description: String {
        switch self {
        case .invalidReference(let r, let why):
            return "invalid image reference '\(r)': \(why). Use [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. docker.io/library/ubuntu:22.04"
        case .invalidURL(let u):
            return "invalid registry URL '\(u)': use http://HOST[:PORT] or https://HOST[:PORT]"
        case .transport(let url, let code, let message):
            return "cannot reach \(url): \(message) (curl error \(code)). Check the network, the registry name, and --httpproxy/http_proxy/https_proxy"
        case .tls(let url, let message):
            return "TLS verification failed for \(url): \(message). If you trust this registry, give its CA certificate (UDOCKER_CA_BUNDLE=FILE, or CURL_CA_BUNDLE or SSL_CERT_FILE), or use --insecure"
        case .plainHTTP(let url, let http):
            return "\(url) answers in plain HTTP, not HTTPS: name the registry with its scheme, \(http) (e.g. --registry=\(http) or UDOCKER_REGISTRY=\(http))"
        case .httpStatus(let url, let status, let message):
            return "registry answered \(status) for \(url)" + (message.isEmpty ? "" : ": \(message)")
        case .unauthorized(let registry, let had, let detail):
            return had
                ? "wrong username or password for \(registry.displayName)\(detail.isEmpty ? "" : " (\(detail))"): check them and run 'udocker login --registry=\(registry.loginName)' again"
                : "\(registry.displayName) refused access\(detail.isEmpty ? "" : " (\(detail))"): the image may not exist or be private; run 'udocker login --registry=\(registry.loginName)' if you have an account"
        case .authenticationRequired(let registry):
            return "\(registry.displayName) requires a username and password: run 'udocker login --registry=\(registry.loginName)'"
        case .tokenFailure(let realm, let detail):
            return "cannot get an access token from \(realm): \(detail). Check the credentials given with 'udocker login', and the network"
        case .notFound(let what, let registry):
            return "\(what) not found in \(registry): check the name and tag (udocker search, or --list-tags)"
        case .digestMismatch(let what, let expected, let actual):
            return "\(what) does not match its digest: expected \(expected), got \(actual); nothing was stored. The registry copy is corrupt or was changed; report it to the registry's owner or pull again later"
        case .sizeMismatch(let what, let expected, let actual):
            return "\(what) has \(actual) bytes but its descriptor says \(expected); nothing was stored. Pull again later"
        case .badManifest(let s):
            return "the registry returned a manifest udocker cannot read: \(s)"
        case .unsupportedMediaType(let t):
            return "unsupported manifest media type '\(t)': udocker reads Docker v2 schema 1 and 2, Docker manifest lists, OCI manifests and OCI indexes"
        case .noMatchingPlatform(let requested, let available):
            return "the image has no variant for platform \(requested); available: \(available.joined(separator: ", ")). Choose one with --platform=OS/ARCH[/VARIANT]"
        case .invalidPlatform(let p):
            return "invalid platform '\(p)': use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7"
        case .sink(let s):
            return "cannot store downloaded data: \(s)"
        case .retriesExhausted(let url, let attempts, let last):
            return "giving up on \(url) after \(attempts) attempts; last error: \(last). Try again later"
        case .tooManyRedirects(let url):
            return "too many redirects starting at \(url): the registry is misconfigured"
        case .uploadFailed(let s):
            return "upload failed: \(s)"
        case .uploadDigestMismatch(let what, let sent, let registry):
            return "the registry stored \(what) as \(registry), but udocker sent \(sent): the registry or a proxy changed the data; the image was not tagged there. Check the registry, then push again"
        case .cannotPush(let s):
            return "cannot push: \(s)"
        case .diffIDMismatch(let layer, let expected, let actual):
            return "layer \(layer) unpacks to \(actual) but the image config says \(expected); the image was not recorded. The image is broken in the registry; report it to its maintainer"
        case .badConfig(let s):
            return "the image config cannot be read: \(s); the image was not recorded"
        case .store(let s):
            return s
        case .limitExceeded(let url, let what, let key):
            return "\(url): \(what). The registry is overloaded, broken or hostile: try again later, "
                + "or change the limit (udocker.conf key \(key), or UDOCKER_\(key.uppercased())=VALUE)"
        }
    }
}
