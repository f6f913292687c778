// Normalises the names found in layer tars into store paths: relative to the layer root, no "." or
// empty components, ".." resolved lexically and refused where it would climb above the root.

enum LayerPath {
    /// The longest path an entry may have (bytes). Beyond it, the entry's path inside a store or a
    /// container directory would reach PATH_MAX (4096), and create, verify and rm could not name it.
    static let maxLength = 3584

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
        if let plain = alreadyNormal(bytes) { return makeString(UnsafeBufferPointer(rebasing: bytes[plain])) }
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
        return out.withUnsafeBufferPointer { makeString($0) }
    }

    /// The range of `bytes` that is already the normalised name, once leading "/" and "./" and trailing "/"
    /// are cut off: nil if anything else needs work (an empty, "." or ".." component). Nearly every name
    /// in a real layer is like that, and then no intermediate buffer is needed.
    private static func alreadyNormal(_ bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        let slash: UInt8 = 0x2F, dot: UInt8 = 0x2E
        var start = 0
        var end = bytes.count
        while start < end {
            if bytes[start] == slash {
                start += 1
            } else if bytes[start] == dot && (start + 1 == end || bytes[start + 1] == slash) {
                start += 2
            } else {
                break
            }
        }
        if start >= end { return 0..<0 }
        while bytes[end - 1] == slash { end -= 1 }
        var componentStart = start
        for i in start...end {
            guard i == end || bytes[i] == slash else { continue }
            let len = i - componentStart
            if len == 0 || (bytes[componentStart] == dot && (len == 1 || (len == 2 && bytes[componentStart + 1] == dot))) {
                return nil
            }
            componentStart = i + 1
        }
        return start..<end
    }

    /// The name as a String; ASCII (nearly always) skips the general UTF-8 validation.
    private static func makeString(_ bytes: UnsafeBufferPointer<UInt8>) -> Normalised {
        var ascii = true
        for b in bytes where b >= 0x80 {
            ascii = false
            break
        }
        if ascii { return .path(String(decoding: bytes, as: UTF8.self)) }
        guard let s = String(validating: bytes, as: UTF8.self) else { return .notUTF8 }
        return .path(s)
    }

    /// Splits a normalised path into its parent ("" for top level) and its last component.
    static func split(_ path: String) -> (parent: String, name: String) {
        var path = path
        return path.withUTF8 { bytes in
            var i = bytes.count - 1
            while i >= 0 && bytes[i] != 0x2F { i -= 1 }
            // Both halves of a valid UTF-8 string split at a "/" are valid UTF-8: decoding cannot repair anything.
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[(i + 1)...]), as: UTF8.self)
            if i < 0 { return ("", name) }
            return (String(decoding: UnsafeBufferPointer(rebasing: bytes[..<i]), as: UTF8.self), name)
        }
    }
}
