// udocker pull [--platform=OS/ARCH[/VARIANT]] [--registry=URL] [--index=URL] [--httpproxy=URL] IMAGE
import ArgumentParser
import Registry
import Runtime

struct Pull: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "pull")

    static let helpText = """
        pull: download images from docker hub
        pull [options] <repo/image:tag>
        --httpproxy=socks4://user:pass@host:port        :use http proxy
        --httpproxy=socks5://user:pass@host:port        :use http proxy
        --httpproxy=socks4://host:port                  :use http proxy
        --httpproxy=socks5://host:port                  :use http proxy
        --index=https://index.docker.io/v1              :docker index
        --registry=https://registry-1.docker.io         :docker registry
        --platform=os/architecture[/variant]            :docker platform
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "pull <repo/image:tag>", text: "Pull container image from dockerhub")]
    }
    static var helpGroup: HelpGroup { .pullAndRun }
    static var helpExamples: [String] {
        ["udocker pull docker.io/repo/image:tag",
         "udocker pull --platform=linux/arm64 ubuntu:22.04",
         "udocker pull --registry=http://localhost:5000 test/busybox"]
    }

    @Option(name: .customLong("platform")) var platform: String?
    @Option(name: .customLong("registry")) var registry: String?
    @Option(name: .customLong("index")) var index: String?
    @Option(name: .customLong("httpproxy")) var httpProxy: String?
    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let platform = try self.platform.map { try Platform(parsing: $0) }
        let repo = try context.repository()
        let images = try ImageStore(repository: repo, store: try repo.openStore())
        let progress = PullProgress.forOutput(quiet: context.output.level < Output.info)
        let output = context.output
        // --index names the Docker Hub search index; a pull needs only the registry.
        _ = index
        var debug: (@Sendable (String) -> Void)? = nil
        if output.level >= Output.debug { debug = { line in output.debug(line) } }
        let report: @Sendable (PullEvent) -> Void = { event in progress.handle(event) }
        let request = PullRequest(
            image: image, platform: platform, registry: registry, httpProxy: httpProxy,
            keystore: Keystore(configuration: context.configuration),
            progress: report,
            debug: debug)
        let (local, pulled, leftOut) = try ImagePull.run(request, configuration: context.configuration,
                                                         environment: context.environment, images: images)
        for line in leftOut { context.output.warning(line) }
        context.output.info("pulled \(local.name) (\(pulled.manifestDigest)): \(pulled.layersDownloaded) of \(pulled.layers.count) layer(s) downloaded")
        return 0
    }
}
