// udocker push [--registry=URL] [--httpproxy=URL] IMAGE [DEST] (beyond udocker 1.3): uploads a local
// image to a registry.
import ArgumentParser
import Registry
import Runtime

struct Push: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "push")

    static let helpText = """
        push: upload an image of the repository to a registry
        push [options] <repo/image:tag> [<[host:port/]repo/image:tag>]
        --registry=https://registry.example.org        :registry for a destination without a host
        --httpproxy=socks5://user:pass@host:port        :use http proxy
        The destination defaults to the image's own name. Blobs the registry has are skipped,
        blobs in another repository of the same registry are mounted, the rest are uploaded.
        Credentials come from 'udocker login'.
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "push <repo/image:tag> [dest]", text: "Push container image to a registry")]
    }
    static var helpGroup: HelpGroup { .pullAndRun }
    static var helpExamples: [String] {
        ["udocker push --registry=http://localhost:5000 test/busybox:latest",
         "udocker push busybox:latest registry.example.org:5000/me/busybox:1.36"]
    }

    @Option(name: .customLong("registry")) var registry: String?
    @Option(name: .customLong("httpproxy")) var httpProxy: String?
    @Argument var image: String
    @Argument var destination: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        let output = context.output
        let progress = PushProgress.forOutput(quiet: output.level < Output.info)
        var debug: (@Sendable (String) -> Void)? = nil
        if output.level >= Output.debug { debug = { line in output.debug(line) } }
        let request = PushRequest(
            image: image, destination: destination, registry: registry, httpProxy: httpProxy,
            keystore: Keystore(configuration: context.configuration),
            progress: { event in progress.handle(event) },
            debug: debug)
        let (local, pushed) = try ImagePush.run(request, configuration: context.configuration,
                                                environment: context.environment, images: images)
        output.info("pushed \(local.name) to \(pushed.reference) (\(pushed.manifestDigest)): "
            + "\(pushed.uploaded) blob(s) uploaded, \(pushed.mounted) mounted, \(pushed.existed) already there")
        return 0
    }
}
