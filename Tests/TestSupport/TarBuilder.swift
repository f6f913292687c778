// Builds tar archives byte by byte (ustar headers), so tests can make archives no tar tool would
// write: entries with "..", absolute paths, links pointing anywhere, content that lies about its name.
import CAS
import Foundation

public struct TarBuilder {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func file(_ name: String, _ content: [UInt8], mode: Int = 0o644) {
        header(name, type: "0", size: content.count, mode: mode)
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    public mutating func file(_ name: String, _ text: String, mode: Int = 0o644) {
        file(name, Array(text.utf8), mode: mode)
    }

    /// A file whose name may be longer than ustar holds: a pax extended header carries its path.
    public mutating func longFile(_ name: String, _ text: String, mode: Int = 0o644) {
        let body = " path=" + name + "\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length = String(length).utf8.count + body.utf8.count }
        let record = Array((String(length) + body).utf8)
        header("PaxHeaders/long", type: "x", size: record.count, mode: 0o644)
        bytes += record
        bytes += [UInt8](repeating: 0, count: (512 - record.count % 512) % 512)
        file("long-name", text, mode: mode)   // the pax path above is the name
    }

    public mutating func directory(_ name: String, mode: Int = 0o755) {
        header(name.hasSuffix("/") ? name : name + "/", type: "5", size: 0, mode: mode)
    }

    public mutating func symlink(_ name: String, to target: String) {
        header(name, type: "2", size: 0, mode: 0o777, link: target)
    }

    public mutating func hardlink(_ name: String, to target: String) {
        header(name, type: "1", size: 0, mode: 0o644, link: target)
    }

    /// A character (or with `block`, block) device node, as Debian images carry in /dev.
    public mutating func device(_ name: String, major: Int, minor: Int, block: Bool = false, mode: Int = 0o666) {
        header(name, type: block ? "4" : "3", size: 0, mode: mode, device: (major, minor))
    }

    /// The archive with its two zero end blocks.
    public var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    public func write(to path: String) throws {
        try Data(archive).write(to: URL(fileURLWithPath: path))
    }

    private mutating func header(_ name: String, type: Character, size: Int, mode: Int, link: String = "",
                                 device: (major: Int, minor: Int)? = nil) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ at: Int, _ len: Int) {
            let b = Array(s.utf8).prefix(len)
            h.replaceSubrange(at..<at + b.count, with: b)
        }
        func octal(_ v: Int, _ at: Int, _ len: Int) {
            put(String(repeating: "0", count: max(0, len - 1 - String(v, radix: 8).count)) + String(v, radix: 8), at, len - 1)
        }
        precondition(name.utf8.count <= 100 && link.utf8.count <= 100, "TarBuilder: names up to 100 bytes")
        put(name, 0, 100)
        octal(mode, 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(1_700_000_000, 136, 12)
        put(String(type), 156, 1)
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        if let d = device {
            octal(d.major, 329, 8)
            octal(d.minor, 337, 8)
        }
        put("        ", 148, 8)
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), 148, 6)
        h[154] = 0
        h[155] = 0x20
        bytes += h
    }
}

/// sha256 of bytes, for tests that build blobs.
public func sha256Digest(_ bytes: [UInt8]) throws -> Digest {
    let h = try SHA256Hasher()
    h.update(bytes)
    return h.finish()
}
