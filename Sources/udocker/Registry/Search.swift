// udocker search: find repositories (Docker Hub's search API, or a registry's _catalog filtered by the
// expression) in udocker 1.3's table, paged on a terminal; or list a repository's tags (--list-tags).
import ArgumentParser
import Registry
import Runtime
#if canImport(Glibc)
import Glibc
#endif

struct Search: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "search")

    static let helpText = """
        search: search dockerhub for container images
        search [options]  <expression>
        -a                                              :do not pause
        --no-trunc                                      :do not trunc lines
        --list-tags                                     :list repository tags
        --index=<url>                ex. https://index.docker.io/v1
        --registry=<url>             ex. https://registry-1.docker.io
        --httpproxy=socks4://user:pass@host:port        :use http proxy
        --httpproxy=socks5://user:pass@host:port        :use http proxy
        --httpproxy=socks4://host:port                  :use http proxy
        --httpproxy=socks5://host:port                  :use http proxy
        --httpproxy=socks4a://user:pass@host:port       :use http proxy
        --httpproxy=socks5h://user:pass@host:port       :use http proxy
        --httpproxy=socks4a://host:port                 :use http proxy
        --httpproxy=socks5h://host:port                 :use http proxy
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "search <repo/expression>", text: "Search dockerhub for container images")]
    }
    static var helpGroup: HelpGroup { .pullAndRun }
    static var helpExamples: [String] {
        ["udocker search expression",
         "udocker search quay.io/expression",
         "udocker search --list-tags myimage"]
    }

    @Flag(name: .customShort("a")) var noPause = false
    @Flag(name: .customLong("no-trunc")) var noTrunc = false
    @Flag(name: .customLong("list-tags")) var listTags = false
    @Option(name: .customLong("index")) var index: String?
    @Option(name: .customLong("registry")) var registry: String?
    @Option(name: .customLong("httpproxy")) var httpProxy: String?
    @Argument var expression: String

    /// Docker Hub answers at most 100 results per search; a registry's catalog is filtered whole.
    static let hubLimit = 100
    static let catalogLimit = 1_000_000

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let options = try RegistryAccess.httpOptions(configuration: context.configuration,
                                                     environment: context.environment,
                                                     httpProxy: httpProxy, debug: context.httpDebug)
        let keystore = Keystore(configuration: context.configuration)
        if listTags {
            let fallback = try RegistryAccess.endpoint(option: registry, configuration: context.configuration)
            let ref = try ImageReference.parse(expression, registryOverride: fallback.baseURL)
            context.output.debug("registry URL: \(ref.registry.baseURL)")
            let client = try RegistryAccess.client(endpoint: ref.registry, options: options, keystore: keystore)
            for tag in try client.listTags(ref.repository) { context.output.out(tag) }
            return 0
        }

        let target = try RegistryAccess.searchTarget(expression: expression, registryOption: registry,
                                                     indexOption: index, configuration: context.configuration)
        context.output.debug("registry URL: \(target.registry.baseURL)")
        let client = try RegistryAccess.client(endpoint: target.registry, options: options, keystore: keystore)
        let limit = target.registry.isDockerHub || target.index != nil ? Self.hubLimit : Self.catalogLimit
        let results = try client.search(target.expression, limit: limit, index: target.index)
        printTable(results, context)
        return 0
    }

    /// udocker 1.3's table: "%-55.80s %8.8s %-70.70s %5.5s" (without the precisions under --no-trunc),
    /// its header at info level. On a terminal, unless -a, it pauses after each screenful.
    private func printTable(_ results: [SearchResult], _ context: CommandContext) {
        let showHeader = context.output.level >= Output.info
        let header = row("NAME", "OFFICIAL", "DESCRIPTION", "STARS")
        let paging = !noPause && Terminal.isInteractive && isatty(1) == 1
        let pageSize = paging ? max(Terminal.rows - 2, 1) : Int.max
        var printed = 0
        if showHeader { context.output.out(header) }
        for r in results {
            if printed > 0 && printed % pageSize == 0 {
                Output.write(1, "[return or q to quit]")
                let answer = (try? Terminal.prompt("", echo: true)) ?? "q"
                if ["q", "Q", "e", "E"].contains(answer) { return }
                if showHeader { context.output.out(header) }
            }
            let description = (r.description ?? "").prefix { $0 != "\n" }.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0.isPunctuation || $0.isSymbol || $0 == " ") }
            context.output.out(row(r.name, r.isOfficial == true ? "[OK]" : "----", String(description),
                                   r.starCount.map(String.init) ?? ""))
            printed += 1
        }
    }

    private func row(_ name: String, _ official: String, _ description: String, _ stars: String) -> String {
        func left(_ s: String, _ width: Int, _ precision: Int?) -> String {
            let t = precision.map { String(s.prefix($0)) } ?? s
            return t.count < width ? t + String(repeating: " ", count: width - t.count) : t
        }
        func right(_ s: String, _ width: Int, _ precision: Int?) -> String {
            let t = precision.map { String(s.prefix($0)) } ?? s
            return t.count < width ? String(repeating: " ", count: width - t.count) + t : t
        }
        let trunc = !noTrunc
        return left(name, 55, trunc ? 80 : nil) + " " + right(official, 8, trunc ? 8 : nil) + " "
            + left(description, 70, trunc ? 70 : nil) + " " + right(stars, 5, trunc ? 5 : nil)
    }
}
