// The text of `udocker --help`, laid out as udocker 1.3's, listing only the commands that exist
// (each command contributes its lines, group and examples).

enum GeneralHelp {
    static func text(commands: [any UdockerCommand.Type] = Commands.all) -> String {
        var lines: [String] = [
            "",
            "Syntax:",
            "  udocker  [general_options] <command>  [command_options]  <command_args>",
            "",
            "  udocker [-h|--help|help]        :Display this help and exits",
            "  udocker [-V|--version|version]  :Display udocker and tarball version and exits",
            "",
            "General options common to all commands must appear before the command:",
        ] + generalOptions.map(format) + [
            "",
            "Commands:",
        ]
        var firstGroup = true
        for group in HelpGroup.allCases {
            let groupLines = commands.filter { $0.helpGroup == group }.flatMap { $0.helpLines }
            if groupLines.isEmpty { continue }
            if !firstGroup { lines.append("") }
            firstGroup = false
            lines += groupLines.map(format)
        }
        let examples = HelpGroup.allCases.flatMap { group in
            commands.filter { $0.helpGroup == group }.flatMap { $0.helpExamples }
        }
        if !examples.isEmpty {
            lines += ["", "Examples:"] + examples.map { "  " + $0 }
        }
        lines += [
            "",
            "Notes:",
            " * by default the binaries, images and containers are placed in",
            "      $HOME/.udocker",
            " * another repository is selected with --repo=<directory> or the",
            "   environment variable UDOCKER_DIR",
            " * repositories made with mkrepo --store=<directory> share one content",
            "   store: each image layer is kept once for all of them",
            "",
            "See: https://github.com/indigo-dc/udocker/blob/master/SUMMARY.md",
        ]
        return lines.joined(separator: "\n")
    }

    /// The options that go before the command (completion offers them too).
    static let generalOptions: [HelpLine] = [
        HelpLine(usage: "-D, --debug", text: "Debug"),
        HelpLine(usage: "-q, --quiet", text: "Less verbosity"),
        HelpLine(usage: "--insecure", text: "Allow insecure non authenticated https"),
        HelpLine(usage: "--repo=<directory>", text: "Use repository at directory"),
        HelpLine(usage: "--allow-root", text: "Allow execution by root NOT recommended"),
        HelpLine(usage: "--config=<conf_file>", text: "Use configuration <conf_file>"),
    ]

    /// "  usage" padded to udocker's column 32, then ":text".
    static func format(_ line: HelpLine) -> String {
        var s = "  " + line.usage
        if s.count < 32 { s += String(repeating: " ", count: 32 - s.count) } else { s += " " }
        return s + ":" + line.text
    }
}
