// Finds an unknown option in a command's arguments, so that a parse failure reports it rather
// than a consequence of it (swift-argument-parser reports a missing argument first).
import ArgumentParser
import Foundation

enum OptionScan {
    /// `args` without the options given an empty value (`--name=`) before the first word that is not
    /// an option: udocker takes an empty value as not given, while swift-argument-parser would take
    /// the next word (`create --name= IMAGE` named the container IMAGE). Stopping at the first
    /// non-option word keeps a container's command (`run c sh -c --x=`) as it is.
    static func droppingEmptyValues(_ args: [String]) -> [String] {
        var out: [String] = []
        var options = true
        for a in args {
            if options && !a.hasPrefix("-") { options = false }
            if options && a == "--" { options = false }
            if options && a.hasPrefix("--") && a.hasSuffix("=") && a.count > 3 { continue }
            out.append(a)
        }
        return out
    }

    /// The first argument that looks like an option the command does not declare, or nil.
    static func firstUnknownOption(_ type: any UdockerCommand.Type, _ args: [String]) -> String? {
        let (known, stopsAtPositional) = declaredOptions(type)
        var i = 0
        while i < args.count {
            let arg = args[i]
            i += 1
            if arg == "--" { return nil }
            guard arg.hasPrefix("-"), arg.count > 1, Double(arg) == nil else {
                if stopsAtPositional { return nil }
                continue
            }
            let name = arg.split(separator: "=", maxSplits: 1).first.map(String.init) ?? arg
            if let takesValue = known[name] {
                if takesValue && !arg.contains("=") { i += 1 }
                continue
            }
            if !arg.hasPrefix("--") && arg.count > 2 {
                // Combined short flags, e.g. -fq.
                if arg.dropFirst().allSatisfy({ known["-" + String($0)] == false }) { continue }
            }
            return name
        }
        return nil
    }

    /// Option names ("--store", "-f") mapped to whether they take a value; and whether the command
    /// passes everything after its first positional argument through (e.g. a command to run).
    private static func declaredOptions(_ type: any UdockerCommand.Type) -> ([String: Bool], Bool) {
        var known: [String: Bool] = ["-h": false, "--help": false]
        var stops = false
        guard let object = try? JSONSerialization.jsonObject(with: Data(type._dumpHelp().utf8)),
              let root = object as? [String: Any],
              let command = root["command"] as? [String: Any],
              let arguments = command["arguments"] as? [[String: Any]] else {
            return (known, true)
        }
        for argument in arguments {
            let kind = argument["kind"] as? String ?? ""
            let strategy = argument["parsingStrategy"] as? String ?? ""
            if kind == "positional" && ["allRemainingInput", "allUnrecognized", "unconditional"].contains(strategy) {
                stops = true
            }
            for n in argument["names"] as? [[String: Any]] ?? [] {
                guard let name = n["name"] as? String, let nameKind = n["kind"] as? String else { continue }
                let spelled = (nameKind == "long" ? "--" : "-") + name
                known[spelled] = kind == "option"
            }
        }
        return (known, stops)
    }
}
