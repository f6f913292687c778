// udocker login: ask for (or take) a username and password, check them against the registry, and keep
// them in the keystore. The password is never echoed, printed or logged.
import ArgumentParser
import Registry
import Runtime

struct Login: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "login")

    static let helpText = """
        login: authenticate into docker repository e.g. dockerhub
        login [options]
        --username=username
        --password=password
        --password-stdin         :read password from stdin
        --registry=<url>         :optional ex. quay.io, public.ecr.aws
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "login", text: "Login into docker repository")]
    }
    static var helpGroup: HelpGroup { .login }
    static var helpExamples: [String] {
        ["udocker login --username=me --registry=https://registry.example.org",
         "echo \"$TOKEN\" | udocker login --username=me --password-stdin --registry=quay.io"]
    }

    @Option(name: .customLong("username")) var username: String?
    @Option(name: .customLong("password")) var password: String?
    @Flag(name: .customLong("password-stdin")) var passwordStdin = false
    @Option(name: .customLong("registry")) var registry: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if password != nil && passwordStdin {
            throw UsageError(description: "--password and --password-stdin exclude each other: give one of them")
        }
        let endpoint = try RegistryAccess.endpoint(option: registry, configuration: context.configuration)
        let keystore = Keystore(configuration: context.configuration)
        let terminal = Terminal.isInteractive

        var user = username ?? ""
        if user.isEmpty {
            guard terminal, !passwordStdin else {
                throw UsageError(description: "no username given: use --username=NAME (udocker only asks for it on a terminal)")
            }
            user = try Terminal.prompt("username: ", echo: true)
        }
        var secret: String
        if passwordStdin {
            secret = try Terminal.readAllStandardInput()
            while let last = secret.last, last == "\n" || last == "\r" { secret.removeLast() }
        } else if let p = password {
            secret = p
        } else {
            guard terminal else {
                throw UsageError(description: "no password given: use --password-stdin (safer than --password, which other users can see in the process list) or run on a terminal")
            }
            secret = try Terminal.prompt("password: ", echo: false)
        }
        guard !user.isEmpty, !secret.isEmpty else {
            throw UsageError(description: "the username and the password must not be empty")
        }
        if secret.contains(where: \.isLetter) && secret == secret.uppercased() {
            context.output.warning("password in uppercase Caps Lock ?")
        }

        let options = try RegistryAccess.httpOptions(configuration: context.configuration,
                                                     environment: context.environment,
                                                     debug: context.httpDebug)
        context.output.debug("registry URL: \(endpoint.baseURL)")
        context.output.debug("keystore: \(keystore.path)")
        try RegistryAccess.login(endpoint: endpoint, credentials: Credentials(username: user, password: secret),
                                 options: options, keystore: keystore)
        context.output.info("login succeeded: credentials for \(endpoint.displayName) stored in \(keystore.path)")
        return 0
    }
}
