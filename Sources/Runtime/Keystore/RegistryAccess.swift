// How commands reach a registry: the endpoint (--registry, UDOCKER_REGISTRY, configuration), HTTP options
// (--insecure, proxies, a CA bundle from CURL_CA_BUNDLE/SSL_CERT_FILE), credentials from the keystore;
// and the login check (credentials tried against GET /v2/ before they are stored).
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Registry

public enum RegistryAccess {
    /// Environment variables naming a PEM bundle of CA certificates to trust instead of the system's:
    /// udocker's own, then in the order curl reads them.
    public static let caBundleVariables = ["UDOCKER_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"]
    /// Where distributions keep the system's CA bundle (Debian and Ubuntu, RHEL and Fedora, openSUSE,
    /// Alpine, old RHEL): used by a release, whose libcurl came from another distribution and looks
    /// only where that one keeps it.
    public static let systemCABundles = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                                         "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem", "/etc/pki/tls/cacert.pem",
                                         "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"]

    /// The registry a command talks to: `option` (--registry=URL, "https://" assumed when no scheme is
    /// given, as udocker does), else the configured `dockerio_registry_url` (UDOCKER_REGISTRY).
    public static func endpoint(option: String?, configuration: Configuration) throws -> RegistryEndpoint {
        if let o = option, !o.isEmpty { return try RegistryEndpoint(url: o) }
        return try RegistryEndpoint(url: configuration.registryURL)
    }

    /// The registry reference of an image name as typed: its host, else `registryOption` (--registry),
    /// else the configured registry (UDOCKER_REGISTRY), else Docker Hub. A name that spells the host of
    /// that option or configured URL uses its scheme (so http:// registries work by name too).
    public static func reference(_ text: String, registryOption: String?, configuration: Configuration) throws -> ImageReference {
        let override = registryOption ?? configuration.registryOverride
        let ref = try ImageReference.parse(text, registryOverride: override)
        if let o = override, let e = try? RegistryEndpoint(url: o), e.host == ref.registry.host, e.scheme != ref.registry.scheme {
            return ImageReference(registry: e, repository: ref.repository, tag: ref.tag, digest: ref.digest)
        }
        return ref
    }

    /// HTTP options from the configuration (`http_insecure`/--insecure, `http_proxy`), --httpproxy, the
    /// proxy and CA bundle environment variables, with `debug` receiving redacted request lines.
    public static func httpOptions(configuration: Configuration, environment: [String: String],
                                   httpProxy: String? = nil,
                                   debug: (@Sendable (String) -> Void)? = nil) throws -> HTTPOptions {
        let proxy = httpProxy ?? configuration.httpProxy
        var options = HTTPOptions(httpProxy: proxy, insecure: try configuration.httpInsecure, environment: environment)
        for variable in caBundleVariables {
            guard let file = environment[variable], !file.isEmpty else { continue }
            guard FileIO.isRegularFile(file) else {
                throw RuntimeError.badEnvironment(variable: variable, value: file,
                                                  expected: "the path of a PEM file of CA certificates")
            }
            options.caFile = file
            break
        }
        if options.caFile == nil, Release.directory != nil {
            options.caFile = systemCABundles.first(where: FileIO.isRegularFile)
        }
        options.timeoutSeconds = try configuration.timeout
        options.downloadTimeoutSeconds = try configuration.downloadTimeout
        options.connectTimeoutSeconds = try configuration.connectTimeout
        options.lowSpeedLimit = try configuration.downloadLowSpeedLimit
        options.lowSpeedSeconds = try configuration.downloadLowSpeedTime
        options.maxDocumentBytes = try configuration.maxDocumentSize
        options.debug = debug
        return options
    }

    /// A client for `endpoint` with the keystore's credentials for it (none when the keystore has none).
    public static func client(endpoint: RegistryEndpoint, options: HTTPOptions, keystore: Keystore?) throws -> RegistryClient {
        var credentials: [String: Credentials] = [:]
        if let keystore, let c = try keystore.credentials(for: endpoint) { credentials[endpoint.host] = c }
        return RegistryClient(endpoint: endpoint, http: HTTPClient(options: options),
                              auth: Authenticator(credentials: credentials))
    }

    /// Checks `credentials` against the registry (GET /v2/ answering its Basic or Bearer challenge) and,
    /// when accepted, stores them in `keystore`. Wrong credentials throw and store nothing.
    public static func login(endpoint: RegistryEndpoint, credentials: Credentials, options: HTTPOptions,
                             keystore: Keystore) throws {
        // Refuse an unsafe keystore before sending anything anywhere.
        _ = try keystore.readAll()
        let client = RegistryClient(endpoint: endpoint, http: HTTPClient(options: options),
                                    auth: Authenticator(credentials: [endpoint.host: credentials]))
        try client.ping()
        try keystore.store(credentials, for: endpoint)
    }

    /// Where `search EXPR` looks, as udocker 1.3 decides it: --registry and --index when given (one given
    /// alone disables the other's default); else a host at the start of the expression
    /// ("quay.io/centos"); else the configured registry, searched through Docker Hub's index when it is
    /// Docker Hub. The expression loses its host and tag.
    public static func searchTarget(expression: String, registryOption: String?, indexOption: String?,
                                    configuration: Configuration) throws
        -> (registry: RegistryEndpoint, index: RegistryEndpoint?, expression: String) {
        var rest = Substring(expression)
        var host: Substring? = nil
        if let r = rest.range(of: "://") {
            let afterScheme = rest[r.upperBound...]
            let end = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
            host = rest[..<end]
            rest = end < afterScheme.endIndex ? afterScheme[afterScheme.index(after: end)...] : ""
        } else if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                host = first
                rest = rest[rest.index(after: slash)...]
            }
        }
        if let colon = rest.lastIndex(of: ":") { rest = rest[..<colon] }
        let term = String(rest)
        let registryGiven = registryOption.map { !$0.isEmpty } ?? false
        let indexGiven = indexOption.map { !$0.isEmpty } ?? false
        if registryGiven || indexGiven {
            var index = try indexOption.flatMap { $0.isEmpty ? nil : try RegistryEndpoint(url: $0) }
            // Docker Hub's index under any of its names (udocker's default is https://hub.docker.com):
            // the Registry module knows where Docker Hub's search API is.
            if let i = index, i.isDockerHub || i.host == "hub.docker.com" { index = nil }
            let registry = try registryOption.flatMap { $0.isEmpty ? nil : try RegistryEndpoint(url: $0) }
                ?? index ?? .dockerHub
            return (registry, index, term)
        }
        if let host {
            let e = try RegistryEndpoint(url: String(host))
            return (e, nil, term)
        }
        return (try endpoint(option: nil, configuration: configuration), nil, term)
    }
}
