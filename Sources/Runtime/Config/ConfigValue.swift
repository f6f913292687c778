// Reading typed values out of configuration text: udocker keeps Python literals ("None",
// "True", "['bash', '-i']") in its defaults and plain strings from udocker.conf; both are accepted.

enum ConfigValue {
    /// Whether the text means "not set" (Python None or nothing).
    static func isUnset(_ text: String) -> Bool {
        let t = text.trimmingCharacters()
        return t.isEmpty || t == "None"
    }

    /// The text without one pair of matching surrounding quotes (udocker's manual shows
    /// `dockerio_registry_url = "https://..."`).
    static func unquoted(_ text: String) -> String {
        let t = text.trimmingCharacters()
        if t.count >= 2, let f = t.first, let l = t.last, f == l, f == "\"" || f == "'" {
            return String(t.dropFirst().dropLast())
        }
        return t
    }

    static func bool(_ text: String) -> Bool? {
        switch unquoted(text).lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    /// A Python list or tuple of strings ("['a', 'b']", "('a',)"), or a whitespace/comma separated
    /// list ("a b", "a, b"). Returns nil when a bracketed literal is malformed.
    static func list(_ text: String) -> [String]? {
        let t = text.trimmingCharacters()
        if isUnset(t) { return [] }
        guard let open = t.first, open == "[" || open == "(" else {
            return t.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\n" })
                .map { unquoted(String($0)) }
        }
        let close: Character = open == "[" ? "]" : ")"
        guard t.last == close else { return nil }
        var items: [String] = []
        var chars = Array(t.dropFirst().dropLast())[...]
        while true {
            while let c = chars.first, c == " " || c == "," || c == "\n" || c == "\t" { chars = chars.dropFirst() }
            guard let c = chars.first else { break }
            if c == "'" || c == "\"" {
                chars = chars.dropFirst()
                var item = ""
                var closed = false
                while let d = chars.first {
                    chars = chars.dropFirst()
                    if d == "\\", let e = chars.first { item.append(e); chars = chars.dropFirst(); continue }
                    if d == c { closed = true; break }
                    item.append(d)
                }
                guard closed else { return nil }
                items.append(item)
            } else {
                var item = ""
                while let d = chars.first, d != "," {
                    item.append(d)
                    chars = chars.dropFirst()
                }
                let word = item.trimmingCharacters()
                // Nested lists or dicts are not lists of strings.
                if word.contains("[") || word.contains("(") || word.contains("{") { return nil }
                items.append(word)
            }
        }
        return items
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(Substring(self).trimmingSpaces().trimmingNewlines())
    }
}

extension Substring {
    func trimmingNewlines() -> Substring {
        var s = self
        while let c = s.first, c == "\n" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == "\n" || c == "\r" { s = s.dropLast() }
        return s
    }
}
