// Normalises the names found in layer tars into store paths: relative to the layer root, no "." or
// empty components, ".." resolved lexically and refused where it would climb above the root.

enum LayerPath {
    enum Normalised: Equatable {
        case path(String)
        case climbsOut
        case notUTF8
    }

    /// "./a//b/./c" -> "a/b/c", "/etc/x" -> "etc/x" (absolute names land inside the root, as with Docker),
    /// "a/../b" -> "b", "../x" and "a/../../x" -> .climbsOut, "/" and "./" -> "" (the root itself).
    static func normalise(_ raw: UnsafePointer<CChar>) -> Normalised {
        var n = 0
        while raw[n] != 0 { n += 1 }
        return raw.withMemoryRebound(to: UInt8.self, capacity: n) {
            normalise(UnsafeBufferPointer(start: $0, count: n))
        }
    }

    static func normalise(_ text: String) -> Normalised {
        var copy = text
        return copy.withUTF8 { normalise($0) }
    }

    static func normalise(_ bytes: UnsafeBufferPointer<UInt8>) -> Normalised {
        let slash: UInt8 = 0x2F, dot: UInt8 = 0x2E
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        let n = bytes.count
        var i = 0
        while i < n {
            var j = i
            while j < n && bytes[j] != slash { j += 1 }
            let len = j - i
            if len == 0 || (len == 1 && bytes[i] == dot) {
                // empty or "." component: nothing to add
            } else if len == 2 && bytes[i] == dot && bytes[i + 1] == dot {
                if out.isEmpty { return .climbsOut }
                if let s = out.lastIndex(of: slash) {
                    out.removeSubrange(s...)
                } else {
                    out.removeAll(keepingCapacity: true)
                }
            } else {
                if !out.isEmpty { out.append(slash) }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<j]))
            }
            i = j + 1
        }
        guard let s = String(validating: out, as: UTF8.self) else { return .notUTF8 }
        return .path(s)
    }

    /// Splits a normalised path into its parent ("" for top level) and its last component.
    static func split(_ path: String) -> (parent: String, name: String) {
        guard let i = path.utf8.lastIndex(of: 0x2F) else { return ("", path) }
        return (String(path[..<i]), String(path[path.index(after: i)...]))
    }
}
