// The general options udocker takes BEFORE the command (udocker [general_options] <command> ...),
// and the split of the command line into those options, the command name and its arguments.
import Runtime

struct GeneralOptions {
    var debug = false
    var quiet = false
    var insecure = false
    var allowRoot = false
    var repo: String?
    var config: String?
    var help = false
    var version = false

    var configOverrides: ConfigOverrides {
        ConfigOverrides(configFile: config, repo: repo, debug: debug, quiet: quiet, insecure: insecure)
    }
}

struct CommandLineSplit {
    var general = GeneralOptions()
    /// The command: the first argument that is not a general option or its value.
    var command: String?
    /// Everything after the command, for the command's own parser.
    var arguments: [String] = []

    /// Splits `args` (without the program name). Options with a value accept `--opt=value` and
    /// `--opt value`. Empty arguments before the command are skipped, as udocker does.
    static func parse(_ args: [String]) throws -> CommandLineSplit {
        var split = CommandLineSplit()
        var i = 0
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg.isEmpty { continue }
            guard arg.hasPrefix("-") else {
                split.command = arg
                split.arguments = Array(args[i...])
                break
            }
            let (name, inlineValue) = splitOption(arg)
            func value() throws -> String {
                if let v = inlineValue {
                    if v.isEmpty { throw missingValue(name) }
                    return v
                }
                guard i < args.count, !args[i].isEmpty else { throw missingValue(name) }
                i += 1
                return args[i - 1]
            }
            switch name {
            case "-D", "--debug": split.general.debug = true
            case "-q", "--quiet": split.general.quiet = true
            case "--insecure": split.general.insecure = true
            case "--allow-root": split.general.allowRoot = true
            case "-h", "--help": split.general.help = true
            case "-V", "--version": split.general.version = true
            case "--repo": split.general.repo = try value()
            case "--config": split.general.config = try value()
            default:
                throw UsageError(description: "unknown option '\(arg)': general options go before the command, see 'udocker --help'")
            }
            if inlineValue != nil && name != "--repo" && name != "--config" {
                throw UsageError(description: "option '\(name)' takes no value: see 'udocker --help'")
            }
        }
        return split
    }

    /// Whether --allow-root is among the general options, read without failing on other mistakes
    /// (the root check comes before everything else, as in udocker).
    static func allowsRoot(_ args: [String]) -> Bool {
        var i = 0
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg.isEmpty { continue }
            if !arg.hasPrefix("-") { return false }
            if arg == "--allow-root" { return true }
            if arg == "--repo" || arg == "--config" { i += 1 }   // skip the option's value
        }
        return false
    }

    private static func splitOption(_ arg: String) -> (String, String?) {
        guard arg.hasPrefix("--"), let eq = arg.firstIndex(of: "=") else { return (arg, nil) }
        return (String(arg[..<eq]), String(arg[arg.index(after: eq)...]))
    }

    private static func missingValue(_ name: String) -> UsageError {
        UsageError(description: "option '\(name)' needs a value, e.g. \(name)=<directory>: see 'udocker --help'")
    }
}
