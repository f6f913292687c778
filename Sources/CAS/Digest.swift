// Content digests ("sha256:<64 hex>"): parsing, validation and the on-disk path fragments derived from them.

/// A validated sha256 content digest. Only sha256 is accepted: it is what the store names files by.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// 64 lowercase hex characters.
    public let hex: String

    /// Parses "sha256:<hex>" (or bare hex when `allowBare`). Rejects anything else, so a digest
    /// taken from a manifest or the command line can never become a path like "../x".
    public init(parsing text: String, allowBare: Bool = false) throws {
        var body = Substring(text)
        if body.hasPrefix("sha256:") {
            body = body.dropFirst(7)
        } else if !allowBare {
            throw CASError.invalidDigest(text)
        }
        guard body.utf8.count == 64, body.utf8.allSatisfy(Digest.isLowerHex) else {
            throw CASError.invalidDigest(text)
        }
        hex = String(body)
    }

    /// From the 32 raw bytes of a SHA-256 result.
    public init(bytes: some Sequence<UInt8>) {
        let table = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for b in bytes {
            out.append(table[Int(b >> 4)])
            out.append(table[Int(b & 0xF)])
        }
        hex = String(decoding: out, as: UTF8.self)
    }

    public var description: String { "sha256:" + hex }
    /// The two-character fan-out directory used under blobs/sha256/.
    public var prefix: String { String(hex.prefix(2)) }

    /// The 32 raw bytes; used as the LMDB key so keys are fixed-size and sort like the hex.
    public var rawBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        appendRawBytes(to: &out)
        return out
    }

    /// Appends the 32 raw bytes to `out` (index values are built this way, without a temporary array).
    func appendRawBytes(to out: inout [UInt8]) {
        var raw: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var text = hex
        text.withUTF8 { hex in
            withUnsafeMutableBytes(of: &raw) { dst in
                for i in 0..<min(32, hex.count / 2) {
                    dst[i] = Digest.nibble(hex[2 * i]) << 4 | Digest.nibble(hex[2 * i + 1])
                }
            }
        }
        withUnsafeBytes(of: &raw) { out.append(contentsOf: $0) }
    }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Digest(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    private static func isLowerHex(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 97 && c <= 102)
    }

    private static func nibble(_ c: UInt8) -> UInt8 {
        c <= 57 ? c - 48 : c - 87
    }
}
