// udocker manifest inspect IMAGE: print the manifest of a local image, else the registry's (as udocker 1.3).
import ArgumentParser
import CAS
import Registry
import Runtime

struct Manifest: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "manifest")

    static let helpText = """
        manifest: print the manifest of a local image, else ask the registry
        manifest [options] inspect <repo/image:tag>
        --index                    :print the image index (multi-platform list)
                                    the local image was chosen from, if any
        --registry=https://registry-1.docker.io         :docker registry
        --platform=os/arch[/variant]                    :from the registry: the
                                    manifest of this platform (default: the
                                    manifest or index the tag names)
        --httpproxy=socks5://user:pass@host:port        :use http proxy
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "manifest inspect <repo/image:tag>", text: "Print the image manifest")]
    }
    static var helpGroup: HelpGroup { .inspect }

    @Argument var action: String
    @Argument var image: String
    @Flag(name: .customLong("index")) var index = false
    @Option(name: .customLong("registry")) var registry: String?
    @Option(name: .customLong("platform")) var platform: String?
    @Option(name: .customLong("httpproxy")) var httpProxy: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard action == "inspect" else {
            throw UsageError(description: "unknown manifest action '\(action)': use 'udocker manifest inspect IMAGE'")
        }
        let platform = try self.platform.map { try Platform(parsing: $0) }
        let repo = try context.repository()
        let store = try repo.openStore()
        // The local image unless the command asks the registry for something (--registry, --platform).
        let local = registry == nil && platform == nil ? try ImageStore(repository: repo, store: store).image(named: image) : nil
        guard let img = local else {
            let request = ManifestRequest(image: image, platform: index ? nil : platform, registry: registry,
                                          httpProxy: httpProxy, keystore: Keystore(configuration: context.configuration),
                                          debug: context.httpDebug)
            let fetched = try RemoteManifest.fetch(request, configuration: context.configuration, environment: context.environment)
            if index, !fetched.isIndex {
                throw UsageError(description: "\(image) names a single-platform manifest in its registry, not an image index")
            }
            context.output.out(JSONPrint.udockerStyle(fetched.raw) ?? String(decoding: fetched.raw, as: UTF8.self))
            return 0
        }
        var digest = img.record.manifestDigest
        if index {
            guard let d = img.record.indexDigest else {
                throw UsageError(description: "\(img.name) was not pulled through an image index")
            }
            digest = d
        }
        let bytes = try FileIO.readFile(store.blobPath(digest))
        context.output.out(JSONPrint.udockerStyle(bytes) ?? String(decoding: bytes, as: UTF8.self))
        return 0
    }
}
