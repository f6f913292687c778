// `manifest inspect` of an image that is not in the repository: the manifest as its registry serves it,
// found as pull finds it (--registry, UDOCKER_REGISTRY, `library/` for one-component names).
import CAS
import Registry

public struct ManifestRequest: Sendable {
    /// IMAGE[:TAG|@DIGEST] as typed.
    public var image: String
    /// --platform: the image manifest of that platform when the name is an index; nil prints the index.
    public var platform: Platform?
    public var registry: String?
    public var httpProxy: String?
    public var keystore: Keystore?
    public var debug: (@Sendable (String) -> Void)?

    public init(image: String, platform: Platform? = nil, registry: String? = nil, httpProxy: String? = nil,
                keystore: Keystore? = nil, debug: (@Sendable (String) -> Void)? = nil) {
        self.image = image; self.platform = platform; self.registry = registry; self.httpProxy = httpProxy
        self.keystore = keystore; self.debug = debug
    }
}

public enum RemoteManifest {
    /// The manifest `request.image` names in its registry: what the tag (or digest) names, as udocker
    /// 1.3 prints it; with a platform, an index is resolved to that platform's image manifest.
    public static func fetch(_ request: ManifestRequest, configuration: Configuration,
                             environment: [String: String]) throws -> FetchedManifest {
        let ref = try RegistryAccess.reference(request.image, registryOption: request.registry, configuration: configuration)
        let options = try RegistryAccess.httpOptions(configuration: configuration, environment: environment,
                                                     httpProxy: request.httpProxy, debug: request.debug)
        let client = try RegistryAccess.client(endpoint: ref.registry, options: options, keystore: request.keystore)
        guard let platform = request.platform else {
            return try client.fetchManifest(ref.repository, reference: ref.reference)
        }
        return try client.resolveImage(ref, platform: platform).manifest
    }
}

extension FetchedManifest {
    /// Whether this is a manifest list or OCI index (a choice of platforms).
    public var isIndex: Bool {
        if case .index = content { return true }
        return false
    }
}
