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
    /// Where `login` stored credentials; nil means anonymous.
    public var keystore: Keystore?
    public var progress: (@Sendable (PullEvent) -> Void)?
    /// Receives the HTTP client's debug lines (secrets redacted).
    public var debug: (@Sendable (String) -> Void)?

    public init(image: String, platform: Platform? = nil, registry: String? = nil, httpProxy: String? = nil,
                keystore: Keystore? = nil,
                progress: (@Sendable (PullEvent) -> Void)? = nil, debug: (@Sendable (String) -> Void)? = nil) {
        self.image = image; self.platform = platform; self.registry = registry; self.httpProxy = httpProxy
        self.keystore = keystore; self.progress = progress; self.debug = debug
    }
}

public enum ImagePull {
    /// Pulls `request.image` into the store of `images` and records it there.
    public static func run(_ request: PullRequest, configuration: Configuration, environment: [String: String],
                           images: ImageStore) throws -> (image: LocalImage, pulled: PulledImage) {
        let name = try ImageName(parsing: request.image)
        let ref = try RegistryAccess.reference(request.image, registryOption: request.registry, configuration: configuration)
        let options = try RegistryAccess.httpOptions(configuration: configuration, environment: environment,
                                                     httpProxy: request.httpProxy, debug: request.debug)
        let client = try RegistryAccess.client(endpoint: ref.registry, options: options, keystore: request.keystore)
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
