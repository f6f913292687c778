// udocker completion bash: a bash completion script made from the commands' own help (beyond
// udocker 1.3), so it lists what `udocker --help` and `udocker help CMD` list and never drifts.
import ArgumentParser

struct Completion: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "completion")

    static let helpText = """
        completion: print a shell completion script
        completion bash
        eval "$(udocker completion bash)"   :complete udocker's commands and options in bash
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "completion bash", text: "Print the bash completion script")]
    }
    static var helpGroup: HelpGroup { .general }
    static var helpExamples: [String] { ["eval \"$(udocker completion bash)\""] }
    static var needsConfiguration: Bool { false }

    @Argument var shell: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard shell == "bash" else {
            throw UsageError(description: "completion takes the shell's name: udocker completion bash")
        }
        context.output.out(Self.bashScript())
        return 0
    }

    /// Every command but the hidden ones (sync-serve).
    static var listed: [any UdockerCommand.Type] { Commands.all.filter { !$0.isHidden } }

    /// The options a command's help names: every word of its help text that starts with - or --,
    /// up to a = (for `--name=<name>`).
    static func options(of command: any UdockerCommand.Type) -> [String] {
        var found: [String] = []
        for line in command.helpText.split(separator: "\n").dropFirst() {
            for word in line.split(whereSeparator: { $0 == " " || $0 == "[" || $0 == "]" || $0 == "|" || $0 == "(" || $0 == ")" || $0 == "," }) {
                guard word.hasPrefix("-"), word.count > 1, word != "--" else { continue }
                var w = String(word.prefix { $0 != "=" && $0 != ":" && $0 != "<" })
                while w.hasSuffix(".") { w.removeLast() }
                guard w.count > 1, w.dropFirst().first?.isLetter == true || w.hasPrefix("--"),
                      w.dropFirst(w.hasPrefix("--") ? 2 : 1).allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }),
                      !found.contains(w) else { continue }
                found.append(w)
            }
        }
        return found
    }

    /// -h/--help and -V/--version, then the general options of `udocker --help` ("--repo=" for
    /// "--repo=<directory>").
    static var generalOptions: [String] {
        ["-h", "--help", "-V", "--version"] + GeneralHelp.generalOptions.flatMap { line in
            line.usage.components(separatedBy: ", ").map { String($0.prefix { $0 != "<" }) }
        }
    }

    static func bashScript() -> String {
        var cases = ""
        for c in listed {
            let opts = options(of: c).map { $0.hasPrefix("--") && c.helpText.contains($0 + "=") ? $0 + "=" : $0 }
            cases += "        " + c.name + ") opts=\"" + opts.joined(separator: " ") + "\" ;;\n"
        }
        let general = generalOptions.joined(separator: " ")
        let names = listed.map { $0.name }.joined(separator: " ")
        return """
            # bash completion for udocker, made by `udocker completion bash` from the commands' help.
            # Use: eval "$(udocker completion bash)", or save it as ~/.local/share/bash-completion/completions/udocker
            _udocker() {
                local cur cmd i opts
                cur=${COMP_WORDS[COMP_CWORD]}
                cmd=""
                for ((i = 1; i < COMP_CWORD; i++)); do
                    case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
                done
                if [ -z "$cmd" ]; then
                    case $cur in
                    -*) COMPREPLY=($(compgen -W "\(general)" -- "$cur")) ;;
                    *) COMPREPLY=($(compgen -W "\(names)" -- "$cur")) ;;
                    esac
                    compopt -o nospace 2>/dev/null; [ "${COMPREPLY[0]: -1}" = "=" ] || compopt +o nospace 2>/dev/null
                    return 0
                fi
                case $cmd in
            \(cases)        *) opts="" ;;
                esac
                case $cur in
                -*) COMPREPLY=($(compgen -W "$opts" -- "$cur"))
                    compopt -o nospace 2>/dev/null; [ "${COMPREPLY[0]: -1}" = "=" ] || compopt +o nospace 2>/dev/null ;;
                *) COMPREPLY=($(compgen -f -- "$cur")) ;;
                esac
                return 0
            }
            complete -F _udocker udocker
            """
    }
}
