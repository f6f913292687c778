// `pull` for a repository: the registry client from the configuration and options, the pull into
// the store, and the image record written while the pull's reservation still holds the data.
import CAS
import Registry
import Synchronization

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
    /// Pulls `request.image` into the store of `images` and records it there. `leftOut` has one line
    /// per layer this pull unpacked that left entries out (see `leftOut(of:)`).
    public static func run(_ request: PullRequest, configuration: Configuration, environment: [String: String],
                           images: ImageStore) throws -> (image: LocalImage, pulled: PulledImage, leftOut: [String]) {
        let name = try ImageName(parsing: request.image)
        let ref = try RegistryAccess.reference(request.image, registryOption: request.registry, configuration: configuration)
        let options = try RegistryAccess.httpOptions(configuration: configuration, environment: environment,
                                                     httpProxy: request.httpProxy, debug: request.debug)
        let client = try RegistryAccess.client(endpoint: ref.registry, options: options, keystore: request.keystore)
        let puller = ImagePuller(client: client, store: images.store)
        // The layers this pull downloads (and so unpacks): what they left out is said once, now.
        let downloaded = DigestSet()
        let progress = request.progress
        var pullOptions = PullOptions(platform: request.platform ?? .host, parallel: try configuration.pullParallel,
                                      progress: { event in
                                          if case let .layerDone(_, digest, _, true) = event { downloaded.digests.withLock { _ = $0.insert(digest) } }
                                          progress?(event)
                                      })
        pullOptions.maxLayerExpansion = try configuration.maxLayerExpansion
        var recorded: LocalImage? = nil
        let pulled = try puller.pull(ref, options: pullOptions) { p in
            recorded = try images.record(p, as: name)
        }
        guard let recorded else { throw RuntimeError.imageNotFound(name.description) }
        let fresh = downloaded.digests.withLock { $0 }
        let notes = pulled.layers.filter { fresh.contains($0.digest) }.compactMap { layer in
            (try? images.store.layer(diffID: layer.diffID)).flatMap { $0 }.flatMap { leftOut(of: $0, layer: layer.digest) }
        }
        return (recorded, pulled, notes)
    }

    /// One sentence naming what the unpacked layer left out (hostile or unusable names, links out of
    /// the layer, odd entry types), or nil when nothing a user would miss was: device nodes of /dev
    /// (every container gets the host's /dev) and aufs metadata are left out of every image.
    public static func leftOut(of manifest: LayerManifest, layer: Digest) -> String? {
        let notable = manifest.skipped.filter { s in
            !(s.reason.hasPrefix("device node") && (s.path == "dev" || s.path.hasPrefix("dev/")))
                && s.reason != "aufs metadata entry ignored"
        }
        guard !notable.isEmpty else { return nil }
        let shown = notable.prefix(5).map { "'\($0.path)' (\($0.reason))" }.joined(separator: ", ")
        let more = notable.count > 5 ? " and \(notable.count - 5) more (udocker store unpack \(layer) lists them)" : ""
        return "layer \(layer) left out \(notable.count) entr\(notable.count == 1 ? "y" : "ies"): \(shown)\(more)"
    }
}

/// Digests collected from the pull's worker threads (a class, so the progress closure can share it).
private final class DigestSet: Sendable {
    let digests = Mutex<Set<Digest>>([])
}
