// `pull` for a repository: the registry client from the configuration and options, the pull into
// the store, and the image record written while the pull's reservation still holds the data.
import CAS
import Registry

public struct PullRequest: Sendable {
    /// IMAGE[:TAG|@DIGEST] as typed.
    public var image: String
    /// --platform; nil means this host.
    public var platform: Platform?
    /// --registry=URL for names without a host.
    public var registry: String?
    /// --httpproxy=URL.
    public var httpProxy: String?
    /// Looks up the login for a registry (the keystore, once it exists); nil means anonymous.
    public var credentials: @Sendable (RegistryEndpoint) -> Credentials?
    public var progress: (@Sendable (PullEvent) -> Void)?
    /// Receives the HTTP client's debug lines (secrets redacted).
    public var debug: (@Sendable (String) -> Void)?
    /// A PEM file of CAs to trust for TLS registries.
    public var caFile: String?

    public init(image: String, platform: Platform? = nil, registry: String? = nil, httpProxy: String? = nil,
                credentials: @escaping @Sendable (RegistryEndpoint) -> Credentials? = { _ in nil },
                progress: (@Sendable (PullEvent) -> Void)? = nil, debug: (@Sendable (String) -> Void)? = nil,
                caFile: String? = nil) {
        self.image = image; self.platform = platform; self.registry = registry; self.httpProxy = httpProxy
        self.credentials = credentials; self.progress = progress; self.debug = debug; self.caFile = caFile
    }
}

public enum ImagePull {
    /// Pulls `request.image` into the store of `images` and records it there.
    public static func run(_ request: PullRequest, configuration: Configuration, environment: [String: String],
                           images: ImageStore) throws -> (image: LocalImage, pulled: PulledImage) {
        let name = try ImageName(parsing: request.image)
        let override = request.registry ?? configuration.registryOverride
        var ref = try ImageReference.parse(request.image, registryOverride: override)
        // A name that spells the host of --registry/UDOCKER_REGISTRY uses that URL's scheme (http://).
        if let o = override, let e = try? RegistryEndpoint(url: o), e.host == ref.registry.host, e.scheme != ref.registry.scheme {
            ref = ImageReference(registry: e, repository: ref.repository, tag: ref.tag, digest: ref.digest)
        }
        var options = HTTPOptions(httpProxy: request.httpProxy ?? configuration.httpProxy,
                                  insecure: try configuration.httpInsecure, environment: environment)
        options.debug = request.debug
        options.caFile = request.caFile
        let creds = request.credentials(ref.registry)
        let client = RegistryClient(endpoint: ref.registry, http: HTTPClient(options: options),
                                    auth: Authenticator(credentials: creds.map { [ref.registry.host: $0] } ?? [:]))
        let puller = ImagePuller(client: client, store: images.store)
        let pullOptions = PullOptions(platform: request.platform ?? .host, parallel: try configuration.pullParallel,
                                      progress: request.progress)
        var recorded: LocalImage? = nil
        let pulled = try puller.pull(ref, options: pullOptions) { p in
            recorded = try images.record(p, as: name)
        }
        guard let recorded else { throw RuntimeError.imageNotFound(name.description) }
        return (recorded, pulled)
    }
}
