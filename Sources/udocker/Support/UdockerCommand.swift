// What every udocker command provides: its argument parsing (swift-argument-parser), its help in
// udocker's style, its place in `udocker --help`, and the code that runs it.
import ArgumentParser
import Runtime

/// The groups of the Commands section of `udocker --help`, in udocker 1.3's order.
enum HelpGroup: Int, CaseIterable {
    /// --help, showconf
    case general
    /// search, pull, create, run
    case pullAndRun
    /// images, ps, name, rmname, rename, clone, rm, rmi, tag
    case local
    /// import, export, load, save
    case transfer
    /// inspect, verify, manifest
    case inspect
    /// protect, unprotect
    case protect
    /// mkrepo, setup
    case repository
    /// login, logout
    case login
}

/// One line of the Commands section: "  usage<padding>:text".
struct HelpLine {
    let usage: String
    let text: String
}

/// A parsed command line, ready to run.
protocol CommandBody {
    /// Runs the command; returns the exit status. Errors thrown are printed as "Error: <error>"
    /// with exit status 1.
    mutating func execute(_ context: CommandContext) throws -> Int32
}

protocol UdockerCommand: ParsableCommand, CommandBody {
    /// `udocker CMD --help` and `udocker help CMD` print this (udocker prints the command's
    /// docstring): a first line "cmd: what it does", the syntax, then one line per option.
    static var helpText: String { get }
    /// This command's lines in the Commands section of `udocker --help` (may be empty).
    static var helpLines: [HelpLine] { get }
    static var helpGroup: HelpGroup { get }
    /// Example command lines for the Examples section of `udocker --help`.
    static var helpExamples: [String] { get }
    /// Whether the configuration files must be read first (false only for help, which must work
    /// even when a configuration file is broken).
    static var needsConfiguration: Bool { get }
    /// Whether the command is left out of help listings and completion (sync-serve, for udocker's own use).
    static var isHidden: Bool { get }
    /// The command's arguments as the parser should see them (default: unchanged). For spellings
    /// swift-argument-parser cannot take, such as an option given an empty value (`--entrypoint=`).
    static func prepareArguments(_ args: [String]) -> [String]
    /// The command parsed without swift-argument-parser, or nil (the default) to let it parse: for
    /// the command started hundreds of times per job (run), whose reflection-based parse is slow.
    static func quickParse(_ args: [String]) -> (any CommandBody)?

    /// Runs the command; returns the exit status. Errors thrown are printed as "Error: <error>"
    /// with exit status 1.
    mutating func execute(_ context: CommandContext) throws -> Int32
}

extension UdockerCommand {
    static var helpLines: [HelpLine] { [] }
    static var helpExamples: [String] { [] }
    static var needsConfiguration: Bool { true }
    static var isHidden: Bool { false }
    static func prepareArguments(_ args: [String]) -> [String] { args }
    static func quickParse(_ args: [String]) -> (any CommandBody)? { nil }
    static var name: String { configuration.commandName ?? "" }
}

/// Everything a command gets from the runner.
struct CommandContext {
    let general: GeneralOptions
    let environment: [String: String]
    let configuration: Configuration
    let output: Output

    /// The repository to work on, as udocker does at start-up: --repo must name an existing
    /// repository; otherwise the default one ($HOME/.udocker or UDOCKER_DIR) is created if needed.
    func repository() throws -> Repository {
        let (repo, actions) = try Repository.openOrCreate(configuration)
        if !actions.isEmpty { output.info("creating repo: " + repo.topdir) }
        for a in actions { output.debug(a.description) }
        return repo
    }
}

/// A command line mistake: printed as one "Error: ..." line, exit status 1.
struct UsageError: Error, CustomStringConvertible {
    let description: String
}
