// Finds the examples of a Markdown page (the `$ command` lines of its fenced blocks, with the output
// shown under each) and runs them in order in one shell home, as a reader would type them.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `$ ` line of a page: the command, what the page shows it printing, and what it must do.
public struct DocExample: Sendable, CustomStringConvertible {
    public let file: String
    public let line: Int
    public let command: String
    public var shown: [String]
    /// Why the block is not run (`<!-- not run: REASON -->` right before its fence), or nil.
    public let notRun: String?
    /// Whether the block runs in the project's checkout (`<!-- run in: checkout -->`) rather than
    /// the home directory.
    public var inCheckout: Bool = false

    /// The exit status the page promises: `# exits N` in the command's comment, else non-zero when
    /// the page shows an `Error:` line, else 0 (nil: any non-zero).
    public var expectedStatus: Int32? {
        if let r = command.range(of: #"#.*\bexits ([0-9]+)"#, options: .regularExpression) {
            let digits = command[r].reversed().prefix(while: \.isNumber).reversed()
            return Int32(String(digits))
        }
        return shown.contains { $0.hasPrefix("Error:") } ? nil : 0
    }

    /// The shown lines a run must print: udocker's own `Info:`, `Warning:` and `Error:` lines, where
    /// `…` stands for what differs between runs (ids, digests, paths).
    public var promisedLines: [String] {
        shown.filter { $0.hasPrefix("Info:") || $0.hasPrefix("Warning:") || $0.hasPrefix("Error:") }
    }

    public var description: String { "\(file):\(line): $ \(command)" }
}

public enum DocExamples {
    /// The examples of `text` (a Markdown page named `file`), in page order.
    public static func parse(_ text: String, file: String) -> [DocExample] {
        var examples: [DocExample] = []
        var inFence = false
        var blockNotRun: String? = nil
        var blockInCheckout = false
        var previous = ""
        var pending: (line: Int, command: String)? = nil
        var fenceHasExample = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(raw)
            if line.hasPrefix("```") {
                if !inFence {
                    blockNotRun = notRunReason(previous)
                    blockInCheckout = previous.trimmingCharacters(in: .whitespaces) == "<!-- run in: checkout -->"
                } else {
                    blockNotRun = nil
                    blockInCheckout = false
                }
                inFence.toggle()
                pending = nil
                fenceHasExample = false
                previous = line
                continue
            }
            defer { previous = line }
            guard inFence else { continue }
            if var p = pending {
                // A command continued with a trailing backslash.
                p.command = String(p.command.dropLast()) + " " + line.trimmingCharacters(in: .whitespaces)
                pending = p.command.hasSuffix("\\") ? p : nil
                if pending == nil { examples.append(DocExample(file: file, line: p.line, command: p.command, shown: [], notRun: blockNotRun, inCheckout: blockInCheckout)) }
                continue
            }
            if line.hasPrefix("$ ") {
                fenceHasExample = true
                let command = String(line.dropFirst(2))
                if command.hasSuffix("\\") {
                    pending = (index + 1, command)
                } else {
                    examples.append(DocExample(file: file, line: index + 1, command: command, shown: [], notRun: blockNotRun, inCheckout: blockInCheckout))
                }
            } else if fenceHasExample, !examples.isEmpty {
                examples[examples.count - 1].shown.append(line)
            }
        }
        return examples
    }

    private static func notRunReason(_ line: String) -> String? {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("<!-- not run:"), t.hasSuffix("-->") else { return nil }
        let reason = t.dropFirst("<!-- not run:".count).dropLast(3).trimmingCharacters(in: .whitespaces)
        return reason.isEmpty ? nil : reason
    }

    /// Whether `output` has a line holding the fragments of `promised` (split at `…`) in order.
    public static func output(_ output: String, keeps promised: String) -> Bool {
        let fragments = promised.components(separatedBy: "…").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return output.split(separator: "\n").contains { line in
            var rest = Substring(line)
            for f in fragments {
                guard let r = rest.range(of: f) else { return false }
                rest = rest[r.upperBound...]
            }
            return true
        }
    }

    /// Runs `example` with bash in `home` (also the working directory, or `checkout` for a block
    /// marked to run there) and returns what went wrong, or nil when it did what the page says.
    public static func check(_ example: DocExample, home: String, checkout: String? = nil, environment: [String: String],
                             timeoutSeconds: Int = 300) -> String? {
        var env = environment
        env["HOME"] = home
        if example.inCheckout, let checkout { env["UDOCKER_DOC_CHECKOUT"] = checkout }
        let script = (example.inCheckout ? "cd \"$UDOCKER_DOC_CHECKOUT\" && unset UDOCKER_DOC_CHECKOUT && " : "cd \"$HOME\" && ") + example.command
        let r = spawnAndCollect(["/usr/bin/timeout", String(timeoutSeconds), "/bin/bash", "-o", "pipefail", "-c", script],
                                environment: env, stdin: nil)
        let both = r.stdout + r.stderr
        var problems: [String] = []
        switch example.expectedStatus {
        case .some(let want) where r.status != want:
            problems.append("exit status \(r.status), the page promises \(want)")
        case .none where r.status == 0:
            problems.append("exit status 0, the page shows an error")
        default: break
        }
        for promised in example.promisedLines where !output(both, keeps: promised) {
            problems.append("no output line like \"\(promised)\"")
        }
        guard !problems.isEmpty else { return nil }
        return "\(example): " + problems.joined(separator: "; ")
            + "\n--- stdout:\n" + String(r.stdout.suffix(2000)) + "\n--- stderr:\n" + String(r.stderr.suffix(2000))
    }
}
