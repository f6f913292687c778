// udocker logout: remove the stored credentials of one registry, or all of them with -a.
import ArgumentParser
import Registry
import Runtime

struct Logout: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "logout")

    static let helpText = """
        logout: remove registry authentication credentials
        logout [options]
        -a                        :remove all authentication credentials
        --registry=<url>          ex. https://registry-1.docker.io
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "logout", text: "Logout from docker repository")]
    }
    static var helpGroup: HelpGroup { .login }

    @Flag(name: .customShort("a")) var all = false
    @Option(name: .customLong("registry")) var registry: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let keystore = Keystore(configuration: context.configuration)
        context.output.debug("keystore: \(keystore.path)")
        if all {
            if try keystore.deleteAll() {
                context.output.info("removed all credentials: \(keystore.path)")
            } else {
                context.output.info("no credentials stored")
            }
            return 0
        }
        let endpoint = try RegistryAccess.endpoint(option: registry, configuration: context.configuration)
        guard try keystore.delete(for: endpoint) else {
            // udocker 1.3 fails here too.
            Output.error("no credentials stored for \(endpoint.displayName) in \(keystore.path)")
            return 1
        }
        context.output.info("removed credentials for \(endpoint.displayName)")
        return 0
    }
}
