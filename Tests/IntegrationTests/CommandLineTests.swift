// The udocker binary's command line as a user sees it: help, version, errors, the root check.
#if canImport(Glibc)
import TestSupport
import Glibc
#endif
import Foundation
import Testing
import CAS

@Suite struct CommandLineTests {
    /// Exactly one line on stderr that starts with "Error: ".
    func expectOneErrorLine(_ r: (status: Int32, stdout: String, stderr: String), containing text: String,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1, sourceLocation: sourceLocation)
        #expect(r.stdout == "", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("Error: "), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasSuffix("\n") && r.stderr.filter { $0 == "\n" }.count == 1,
                "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(text), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func unknownCommandIsOneErrorLine() {
        expectOneErrorLine(runUdocker(["frobnicate"]), containing: "'frobnicate'")
        expectOneErrorLine(runUdocker(["help", "frobnicate"]), containing: "'frobnicate'")
    }

    @Test func unknownOptionIsOneErrorLine() {
        let r = runUdocker(["mkrepo", "--foo"])
        #expect(r.stderr == "Error: unknown option '--foo' for 'mkrepo': see 'udocker mkrepo --help'\n")
        #expect(r.status == 1)
        #expect(r.stdout == "")
        expectOneErrorLine(runUdocker(["mkrepo", "--foo", "/tmp/never-created-by-udocker-tests"]),
                           containing: "unknown option '--foo' for 'mkrepo'")
        expectOneErrorLine(runUdocker(["--foo", "version"]), containing: "unknown option '--foo'")
        expectOneErrorLine(runUdocker(["version", "extra"]), containing: "'extra'")
        expectOneErrorLine(runUdocker(["mkrepo"]), containing: "<directory>")
        expectOneErrorLine(runUdocker(["--repo"]), containing: "'--repo' needs a value")
        // General options go before the command; after it they are the command's (unknown) options.
        expectOneErrorLine(runUdocker(["version", "-D"]), containing: "unknown option '-D' for 'version'")
    }

    @Test func generalHelp() {
        for args in [[], ["--help"], ["-h"], ["help"], ["-D", "--help"]] {
            let r = runUdocker(args)
            #expect(r.status == 0, "args \(args)")
            #expect(r.stderr == "", "args \(args)")
            #expect(r.stdout.contains("Syntax:\n  udocker  [general_options] <command>  [command_options]  <command_args>"))
            #expect(r.stdout.contains("  --repo=<directory>            :Use repository at directory"))
            #expect(r.stdout.contains("  --allow-root                  :Allow execution by root NOT recommended"))
            #expect(r.stdout.contains("  mkrepo <top-repo-dir>         :Create another repository in location"))
        }
    }

    @Test func everyCommandInTheHelpExists() throws {
        let help = runUdocker(["help"]).stdout
        let section = try #require(help.components(separatedBy: "Commands:\n").last?
            .components(separatedBy: "\n\nExamples:").first)
        let names = Set(section.split(separator: "\n").compactMap { line -> String? in
            let word = line.split(separator: " ").first.map(String.init) ?? ""
            return word.hasPrefix("-") || word.isEmpty ? nil : word
        })
        #expect(names.isSuperset(of: ["showconf", "mkrepo"]))
        for name in names {
            let r = runUdocker([name, "--help"])
            #expect(r.status == 0, "udocker \(name) --help: \(r.stderr)")
            #expect(r.stdout.hasPrefix(name + ":"), "udocker \(name) --help: \(r.stdout)")
        }
    }

    /// The options a command's parser accepts, spelled as on the command line ("-v", "--volume"), from
    /// swift-argument-parser's own description of them (`--experimental-dump-help`); its help flag left out.
    func acceptedOptions(_ command: String) throws -> [(name: String, takesValue: Bool)] {
        let dump = runUdocker([command, "--experimental-dump-help"])
        try #require(dump.status == 0, "\(dump.stderr)")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let arguments = try #require((root["command"] as? [String: Any])?["arguments"] as? [[String: Any]])
        var names: [(name: String, takesValue: Bool)] = []
        for a in arguments where ["option", "flag"].contains(a["kind"] as? String ?? "") {
            for n in a["names"] as? [[String: Any]] ?? [] {
                guard let name = n["name"] as? String, name != "help", name != "h" else { continue }
                names.append(((n["kind"] as? String == "long" ? "--" : "-") + name, a["kind"] as? String == "option"))
            }
        }
        return names
    }

    /// `run --help` lists every option `run` accepts (udocker 1.3.17's text, then ours).
    @Test func runHelpListsEveryOptionRunAccepts() throws {
        let help = runUdocker(["run", "--help"]).stdout
        let accepted = try acceptedOptions("run").map(\.name)
        #expect(accepted.contains("--registry") && accepted.contains("-v") && accepted.contains("--netcoop"), "\(accepted)")
        for option in accepted {
            // The option as a word of its own: "--volume=/data:/mnt", "-w= -u=", "-i -t -a".
            let listed = help.range(of: "(^|[\\s(])" + NSRegularExpression.escapedPattern(for: option) + "([=\\s:,)]|$)",
                                    options: .regularExpression) != nil
            #expect(listed, "udocker run --help does not list \(option)")
        }
    }

    /// run parses its usual command lines itself (swift-argument-parser's first parse costs ~2 ms of
    /// every run): every option it accepts takes that path; other spellings still work through the parser.
    @Test func everyRunOptionTakesTheQuickParse() throws {
        let fallback = "parsed by swift-argument-parser"
        for (option, takesValue) in try acceptedOptions("run") {
            let pull = option == "--pull" ? [] : ["--pull=never"]
            let r = runUdocker(["-D", "run"] + [option] + (takesValue ? ["never"] : []) + pull + ["nosuch", "/bin/true"])
            #expect((r.status == 1 || r.status == 2) && !r.stderr.contains(fallback), "\(option): \(r.stderr)")
        }
        let combined = runUdocker(["-D", "run", "-it", "--pull=never", "nosuch"])
        #expect(combined.stderr.contains(fallback) && combined.stderr.contains("nosuch"), "\(combined.stderr)")
        let unknown = runUdocker(["run", "--frobnicate", "nosuch"])
        #expect(unknown.stderr == "Error: unknown option '--frobnicate' for 'run': see 'udocker run --help'\n", "\(unknown.stderr)")
    }

    @Test func commandHelpInEveryForm() {
        let forms = [["mkrepo", "--help"], ["mkrepo", "-h"], ["help", "mkrepo"], ["--help", "mkrepo"],
                     ["mkrepo", "/some/dir", "--help"]]
        let results = forms.map { runUdocker($0) }
        for (args, r) in zip(forms, results) {
            #expect(r.status == 0, "args \(args)")
            #expect(r.stderr == "", "args \(args)")
            #expect(r.stdout.hasPrefix("mkrepo: create a local repository in a specified directory\n"), "args \(args)")
            #expect(r.stdout.contains("--store=<store-dir>"), "args \(args)")
            #expect(r.stdout == results[0].stdout, "args \(args)")
        }
        #expect(!FileIO.exists("/some/dir"))
    }

    @Test func version() {
        for args in [["version"], ["-V"], ["--version"], ["-q", "--version"]] {
            let r = runUdocker(args)
            #expect(r.status == 0, "args \(args)")
            #expect(r.stderr == "")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("version: 1.3.") == true, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("tarball: ") })
            #expect(lines.contains("tarball_release: 1.2.11"))
        }
        let r = runUdocker(["version"], env: ["UDOCKER_TARBALL": "/local/udocker-englib.tar.gz"])
        #expect(r.stdout.contains("tarball: /local/udocker-englib.tar.gz\n"))
    }

    @Test func refusesToRunAsRoot() {
        let r = runUdocker(["version"], allowRootWhenRoot: false)
        if geteuid() == 0 {
            #expect(r.status == 1)
            #expect(r.stdout == "")
            #expect(r.stderr == "Error: do not run as root !\n")
            for args in [["--allow-root", "version"], ["--repo", "/tmp", "--allow-root", "version"]] {
                let allowed = runUdocker(args, allowRootWhenRoot: false)
                #expect(allowed.status == 0, "args \(args)")
                #expect(allowed.stdout.hasPrefix("version: "), "args \(args)")
            }
            // The refusal comes first, whatever else is on the command line.
            #expect(runUdocker(["--help"], allowRootWhenRoot: false).stderr == "Error: do not run as root !\n")
            #expect(runUdocker(["version", "--allow-root"], allowRootWhenRoot: false).status == 1)
        } else {
            // Unprivileged: the check must not get in the way.
            #expect(r.status == 0)
            #expect(r.stdout.hasPrefix("version: "))
            #expect(r.stderr == "")
        }
    }

    /// An option given an empty value is not given, as in udocker: `create --name= IMAGE` makes an
    /// unnamed container of IMAGE (swift-argument-parser took IMAGE as the name).
    @Test func anEmptyOptionValueIsNotGiven() throws {
        let r = try ImportedBusyboxRepo(label: "empty-value")
        let made = r.run(["create", "--name=", "test/bb:1"])
        #expect(made.status == 0, "\(made.stderr)")
        let id = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.count == 36, "\(made.stdout)")
        let ps = r.run(["ps"])
        let line = ps.stdout.split(separator: "\n").first { $0.hasPrefix(id) }.map(String.init) ?? ""
        #expect(line.contains(" test/bb:1") && !line.contains("'test/bb:1'"), "\(ps.stdout)")
    }
}
