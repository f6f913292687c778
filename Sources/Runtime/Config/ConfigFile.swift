// Parser for udocker.conf: the INI dialect of Python's ConfigParser as udocker 1.3 reads it
// (only the [DEFAULT] section counts), with errors that name the file and line.

/// One parsed udocker.conf file.
public struct ConfigFile: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: String
        public let line: Int
    }

    public let path: String
    /// The [DEFAULT] entries in file order. Keys are lowercased as ConfigParser does.
    public let entries: [Entry]

    /// Parses `text` read from `path`.
    ///
    /// Rules (Python ConfigParser's, which udocker 1.3 uses): `key = value` or `key: value`; keys are
    /// case-insensitive; whole-line comments start with `#` or `;` (a `#` later in a line is part of
    /// the value); an indented line continues the previous value; only `[DEFAULT]` is read, other
    /// sections are parsed and ignored. Unlike ConfigParser, keys before any section header count
    /// as [DEFAULT] (udocker's manual shows such files), and `%` is not interpolated.
    public static func parse(_ text: String, path: String) throws -> ConfigFile {
        var entries: [Entry] = []
        var section: String? = nil
        var seenSections: [String: Int] = [:]
        var seenKeys: [String: Int] = [:]   // "section\u{0}key" -> line
        // Index into `entries` of the value an indented line continues (nil outside DEFAULT).
        var continuing: (index: Int?, active: Bool) = (nil, false)

        // "\r\n" is one Character in Swift, so it must be named as a separator of its own.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (offset, rawLine) in lines.enumerated() {
            let number = offset + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let trimmed = line.trimmingSpaces()

            if trimmed.isEmpty {
                continuing.active = false
                continue
            }
            if trimmed.hasPrefix("#") || trimmed.hasPrefix(";") { continue }

            if let first = line.first, first == " " || first == "\t" {
                if continuing.active {
                    if let i = continuing.index {
                        let e = entries[i]
                        let joined = e.value.isEmpty ? String(trimmed) : e.value + "\n" + trimmed
                        entries[i] = Entry(key: e.key, value: joined, line: e.line)
                    }
                    continue
                }
                // An indented line with nothing to continue is read as a normal line, as ConfigParser does.
            }

            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]"), trimmed.count >= 3 else {
                    throw RuntimeError.configSyntax(file: path, line: number,
                        message: "malformed section header '\(trimmed)', expected e.g. [DEFAULT]")
                }
                let name = String(trimmed.dropFirst().dropLast())
                if let previous = seenSections[name] {
                    throw RuntimeError.configSyntax(file: path, line: number,
                        message: "section [\(name)] appears twice (first on line \(previous))")
                }
                seenSections[name] = number
                section = name
                continuing = (nil, false)
                continue
            }

            guard let delimiter = trimmed.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw RuntimeError.configSyntax(file: path, line: number,
                    message: "expected 'key = value', found '\(trimmed)'")
            }
            let key = trimmed[..<delimiter].trimmingSpaces().lowercased()
            let value = String(trimmed[trimmed.index(after: delimiter)...].trimmingSpaces())
            guard !key.isEmpty else {
                throw RuntimeError.configSyntax(file: path, line: number,
                    message: "missing key before '\(trimmed[delimiter])' in '\(trimmed)'")
            }
            let sectionName = section ?? "DEFAULT"
            let seenKey = sectionName + "\u{0}" + key
            if let previous = seenKeys[seenKey] {
                throw RuntimeError.configSyntax(file: path, line: number,
                    message: "key '\(key)' is set twice in [\(sectionName)] (first on line \(previous))")
            }
            seenKeys[seenKey] = number
            if sectionName == "DEFAULT" {
                entries.append(Entry(key: key, value: value, line: number))
                continuing = (entries.count - 1, true)
            } else {
                continuing = (nil, true)
            }
        }
        return ConfigFile(path: path, entries: entries)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
