// The man page and the bash completion are made from the CLI's own help: docs/udocker.1 must be what
// scripts/gen-man.py makes from this build now, and the completion must offer every command and
// option the help lists.
import TestSupport
import Testing
import CAS
import Foundation

@Suite struct ManPageTests {
    static var packageRoot: String {
        var root = #filePath
        for _ in 0..<3 { root = FileIO.parent(of: root) }
        return root
    }

    @Test func theManPageIsTheHelpOfThisBuild() throws {
        let made = String(decoding: try runCommand("/usr/bin/python3", [Self.packageRoot + "/scripts/gen-man.py", udockerBinaryPath()]), as: UTF8.self)
        let kept = String(decoding: try FileIO.readFile(Self.packageRoot + "/docs/udocker.1"), as: UTF8.self)
        #expect(made == kept, "docs/udocker.1 is not the help of this build: run scripts/gen-man.py .build/debug/udocker > docs/udocker.1")
        #expect(made.contains(".SS sync") && made.contains(".SS export") && made.contains("--repo"))
    }

    /// What bash completes for the words `words` (the last one being completed).
    func complete(_ script: String, _ words: [String]) throws -> [String] {
        let quoted = words.map { "'" + $0 + "'" }.joined(separator: " ")
        let line = "source \(script); COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); _udocker; printf '%s\\n' \"${COMPREPLY[@]}\""
        let out = String(decoding: try runCommand("/bin/bash", ["-c", line]), as: UTF8.self)
        return out.split(separator: "\n").map(String.init)
    }

    @Test func bashCompletionOffersEveryCommandAndItsOptions() throws {
        let dir = makeTempDirectory("completion")
        defer { try? FileIO.removeTree(dir) }
        let gen = runUdocker(["completion", "bash"])
        try #require(gen.status == 0, "\(gen.stderr)")
        let script = dir + "/udocker.bash"
        try writeFile(script, gen.stdout)
        let help = runUdocker(["--help"]).stdout
        var listed: [String] = []
        var inCommands = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "Commands:" { inCommands = true; continue }
            if inCommands && (line == "Examples:" || line == "Notes:") { break }
            if inCommands, line.hasPrefix("  "), let first = line.dropFirst(2).split(separator: " ").first,
               first.first?.isLetter == true, !listed.contains(String(first)) { listed.append(String(first)) }
        }
        #expect(listed.count > 25, "\(listed)")
        let all = try complete(script, ["udocker", ""])
        for c in listed { #expect(all.contains(c), "completion lacks the command \(c)") }
        #expect(!all.contains("sync-serve"), "a hidden command is offered")
        #expect(try complete(script, ["udocker", "pu"]) == ["pull", "push"])
        // Options as each command's help names them.
        for (command, option) in [("sync", "--install-remote"), ("export", "--repo"), ("run", "--volume="), ("import", "--repo")] {
            let offered = try complete(script, ["udocker", command, String(option.prefix(4))])
            #expect(offered.contains(option), "\(command): \(offered)")
            #expect(runUdocker(["help", command]).stdout.contains(option.hasSuffix("=") ? String(option.dropLast()) : option))
        }
        #expect(try complete(script, ["udocker", "--re"]) == ["--repo="])
    }
}
