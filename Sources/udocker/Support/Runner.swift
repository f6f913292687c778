// Runs one udocker command line the way udocker 1.3 does: root check, general options, help and
// version, configuration, then the command. Every failure is one "Error: ..." line and status 1.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Runtime

enum Runner {
    static func run(arguments: [String], environment: [String: String]) -> Int32 {
        let args = Array(arguments.dropFirst())

        // udocker refuses to run as root before looking at anything else, help included.
        if geteuid() == 0 && !CommandLineSplit.allowsRoot(args) {
            Output.error("do not run as root !")
            return 1
        }

        let split: CommandLineSplit
        do {
            split = try CommandLineSplit.parse(args)
        } catch {
            Output.error(String(describing: error))
            return 1
        }

        // Help and version as general options win over the command, as in udocker.
        let name: String
        let commandArgs: [String]
        if split.general.help || split.command == nil && !split.general.version {
            name = Help.name
            commandArgs = split.command.map { [$0] } ?? []
        } else if split.general.version {
            name = Version.name
            commandArgs = []
        } else {
            name = split.command ?? ""
            commandArgs = split.arguments
        }
        guard let type = Commands.find(name) else {
            Output.error(invalidCommand(name))
            return 1
        }

        var command: any CommandBody
        if let quick = type.quickParse(commandArgs) {
            command = quick
        } else {
            // Tests look for this line: every option of run must take the quick path.
            if split.general.debug && type is Run.Type { Output.write(2, "Debug: run's options parsed by swift-argument-parser\n") }
            switch parse(type, commandArgs) {
            case .command(let c): command = c
            case .exit(let status): return status
            }
        }

        do {
            let configuration: Configuration
            if type.needsConfiguration {
                configuration = try Configuration.load(environment: environment,
                                                       overrides: split.general.configOverrides)
            } else {
                configuration = Configuration(home: Paths.home(environment: environment),
                                              tmpdir: environment["TMPDIR"])
            }
            let level = split.general.debug ? Output.debug
                : split.general.quiet ? Output.message
                : try configuration.verboseLevel
            let context = CommandContext(general: split.general, environment: environment,
                                         configuration: configuration, output: Output(level: level))
            return try command.execute(context)
        } catch {
            Output.error(String(describing: error))
            return 1
        }
    }

    enum Parsed {
        case command(any UdockerCommand)
        /// Help or an error was printed.
        case exit(Int32)
    }

    /// The command as swift-argument-parser parses `args`, or the status after the help or error it printed.
    static func parse(_ type: any UdockerCommand.Type, _ args: [String]) -> Parsed {
        do {
            let parsed = try type.parseAsRoot(OptionScan.droppingEmptyValues(type.prepareArguments(args)))
            guard let c = parsed as? any UdockerCommand else {
                // parseAsRoot returns the type itself or its built-in help; help is handled below.
                Output.write(1, type.helpText + "\n")
                return .exit(0)
            }
            return .command(c)
        } catch {
            if type.exitCode(for: error) == .success {
                // swift-argument-parser's description of the options the command accepts (JSON), for
                // tools and the test that checks the help lists them all; else udocker's help.
                let dump = args.contains("--experimental-dump-help")
                Output.write(1, (dump ? type.message(for: error) : type.helpText) + "\n")
                return .exit(0)
            }
            Output.error(parseErrorMessage(type, error, args))
            return .exit(1)
        }
    }

    static func invalidCommand(_ name: String) -> String {
        "invalid command '\(name)': see 'udocker --help' for the list of commands"
    }

    /// swift-argument-parser's message, made one udocker-style line:
    /// "unknown option '--foo' for 'mkrepo': see 'udocker mkrepo --help'".
    static func parseErrorMessage(_ type: any UdockerCommand.Type, _ error: Error, _ args: [String]) -> String {
        if let unknown = OptionScan.firstUnknownOption(type, args) {
            return "unknown option '\(unknown)' for '\(type.name)': see 'udocker \(type.name) --help'"
        }
        let full = type.message(for: error)
        var first = full.split(separator: "\n").first.map(String.init) ?? "invalid command line"
        while first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
        while let last = first.last, last == "." || last == " " { first.removeLast() }
        if let c = first.first { first = c.lowercased() + first.dropFirst() }
        return "\(first) for '\(type.name)': see 'udocker \(type.name) --help'"
    }
}
