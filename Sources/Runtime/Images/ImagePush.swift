// `push` for a repository: the local image, where it goes (DEST, --registry, the configured registry),
// the registry client exactly as pull builds it, and the mount source when the image came from the
// same registry.
import CAS
import Registry

public struct PushRequest: Sendable {
    /// The local image, NAME[:TAG], as typed.
    public var image: String
    /// [HOST[:PORT]/]NAME[:TAG] to push to; nil means the image's own name.
    public var destination: String?
    /// --registry=URL for a destination without a host.
    public var registry: String?
    /// --httpproxy=URL.
    public var httpProxy: String?
    /// Where `login` stored credentials; nil means anonymous.
    public var keystore: Keystore?
    public var progress: (@Sendable (PushEvent) -> Void)?
    /// Receives the HTTP client's debug lines (secrets redacted).
    public var debug: (@Sendable (String) -> Void)?
    /// Blobs above this size are sent in chunks of it.
    public var chunkSize: UInt64

    public init(image: String, destination: String? = nil, registry: String? = nil, httpProxy: String? = nil,
                keystore: Keystore? = nil, progress: (@Sendable (PushEvent) -> Void)? = nil,
                debug: (@Sendable (String) -> Void)? = nil, chunkSize: UInt64 = PushOptions.defaultChunkSize) {
        self.image = image; self.destination = destination; self.registry = registry; self.httpProxy = httpProxy
        self.keystore = keystore; self.progress = progress; self.debug = debug; self.chunkSize = chunkSize
    }
}

public enum ImagePush {
    /// Pushes the local image `request.image` of `images` to `request.destination` (default: its name).
    public static func run(_ request: PushRequest, configuration: Configuration, environment: [String: String],
                           images: ImageStore) throws -> (image: LocalImage, pushed: PushedImage) {
        let local = try images.require(request.image)
        let ref = try RegistryAccess.reference(request.destination ?? local.name.description,
                                               registryOption: request.registry, configuration: configuration)
        let options = try RegistryAccess.httpOptions(configuration: configuration, environment: environment,
                                                     httpProxy: request.httpProxy, debug: request.debug)
        let client = try RegistryAccess.client(endpoint: ref.registry, options: options, keystore: request.keystore)
        let pusher = ImagePusher(client: client, store: images.store)
        let pushOptions = PushOptions(parallel: try configuration.pullParallel, chunkSize: request.chunkSize,
                                      mountFrom: mountSource(local.record, to: ref), progress: request.progress)
        let pushed = try pusher.push(manifest: local.record.manifestDigest, mediaType: local.record.manifestMediaType,
                                     to: ref, options: pushOptions)
        return (local, pushed)
    }

    /// The repository to mount blobs from: where the image was pulled from, when that is another
    /// repository of the destination's registry.
    static func mountSource(_ record: ImageRecord, to ref: ImageReference) -> String? {
        guard let source = try? RegistryEndpoint(url: record.registry), source.host == ref.registry.host,
              record.repository != ref.repository else { return nil }
        return record.repository
    }
}
