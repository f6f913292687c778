// Tests of the hand-written layer.json encoder: byte-identical to JSONEncoder (sorted keys, unescaped
// slashes) for every kind of entry and hostile text, readable by the decoder, and what unpack writes.
import Foundation
import Testing
@testable import CAS

@Suite struct LayerManifestJSONTests {
    /// What layer.json held before the hand-written encoder: Foundation's output with the store's options.
    static func foundationBytes(_ m: LayerManifest) throws -> [UInt8] {
        Array(try StoreFiles.jsonEncoder().encode(m))
    }

    /// nil when equal, else where the two differ, with some text around it (arrays of bytes make
    /// unreadable failure messages).
    static func difference(_ a: [UInt8], _ b: [UInt8]) -> String? {
        if a == b { return nil }
        var at = 0
        while at < min(a.count, b.count) && a[at] == b[at] { at += 1 }
        func around(_ x: [UInt8]) -> String { String(decoding: x[max(0, at - 40)..<min(x.count, at + 40)], as: UTF8.self) }
        return "differ at byte \(at) of \(a.count)/\(b.count): ours …\(around(a))… JSONEncoder …\(around(b))…"
    }

    static func digest(_ text: String) throws -> Digest {
        try SHA256Hasher.digest(of: Array(text.utf8))
    }

    /// Every ASCII character (controls included), quotes, backslashes, slashes and non-ASCII text.
    static let awkward: String = {
        var s = ""
        for v in 0..<0x80 { s.unicodeScalars.append(Unicode.Scalar(UInt8(v))) }
        return s + "\u{7f}\u{80}\u{a0}é e\u{301} \u{2028}\u{2029}\u{feff}😀 \\\"/\\/ ../ \"x\""
    }()

    static func sample() throws -> LayerManifest {
        let entries: [LayerEntry] = [
            LayerEntry(path: "", kind: .directory, mode: 0o755, mtime: 0),
            LayerEntry(path: "etc", kind: .directory, mode: 0o1777, uid: 0, gid: 0, mtime: -1),
            LayerEntry(path: "etc/hostname", kind: .file, mode: 0o644, uid: 1000, gid: 100, mtime: 1_600_000_000,
                       size: 4, digest: try digest("box\n")),
            LayerEntry(path: "bin/max", kind: .file, mode: UInt32.max, uid: UInt32.max, gid: UInt32.max,
                       mtime: Int64.max, size: UInt64.max, digest: try digest("x")),
            LayerEntry(path: "bin/min", kind: .file, mode: 0, mtime: Int64.min, size: 0, digest: try digest("")),
            LayerEntry(path: "bin/again", kind: .hardlink, mode: 0o4755, mtime: 9, size: 1, digest: try digest("x"),
                       target: "bin/max"),
            LayerEntry(path: "bin/sh", kind: .symlink, mode: 0o777, mtime: 10, target: "/bin/busybox"),
            LayerEntry(path: "odd/" + awkward, kind: .symlink, mode: 0o777, target: awkward),
            LayerEntry(path: "run/fifo", kind: .fifo, mode: 0o600, mtime: 1),
            LayerEntry(path: "dev/null", kind: .charDevice, mode: 0o666, devMajor: 1, devMinor: 3),
            LayerEntry(path: "dev/sda", kind: .blockDevice, mode: 0o660, devMajor: UInt32.max, devMinor: 0),
            LayerEntry(path: "dangling", kind: .hardlink, mode: 0o644, target: "gone"),
        ]
        var m = LayerManifest(diffID: try digest("tar"), blobs: [try digest("a"), try digest("b")],
                              compression: "gzip", entries: entries,
                              whiteouts: ["etc/old", awkward], opaqueDirs: ["", "var/" + awkward],
                              skipped: [SkippedEntry(path: "../x", reason: "path climbs out of the layer root with '..'; not created"),
                                        SkippedEntry(path: awkward, reason: awkward)])
        m.format = 1
        return m
    }

    @Test func sameBytesAsJSONEncoder() throws {
        let m = try Self.sample()
        let ours = LayerManifestJSON.encode(m)
        let foundation = try Self.foundationBytes(m)
        #expect(Self.difference(ours, foundation) == nil)
        // The call the store makes picks the hand-written encoder.
        #expect(Self.difference(try StoreFiles.encode(m), foundation) == nil)
        #expect(try JSONDecoder().decode(LayerManifest.self, from: Data(ours)) == m)
    }

    @Test func sameBytesForEmptyManifest() throws {
        let m = LayerManifest(diffID: try Self.digest(""), blobs: [], compression: "none", entries: [],
                              whiteouts: [], opaqueDirs: [], skipped: [])
        #expect(Self.difference(LayerManifestJSON.encode(m), try Self.foundationBytes(m)) == nil)
        #expect(String(decoding: LayerManifestJSON.encode(m), as: UTF8.self).hasPrefix("{\"blobs\":[],\"compression\":\"none\""))
    }

    @Test func everyUnicodeScalarEscapedAsJSONEncoderDoes() throws {
        var text = ""
        for v in stride(from: 0, through: 0x10FFFF, by: 97) {
            if let u = Unicode.Scalar(v) { text.unicodeScalars.append(u) }
        }
        for v in 0..<0x100 { text.unicodeScalars.append(Unicode.Scalar(UInt8(v))) }
        let m = LayerManifest(diffID: try Self.digest("u"), blobs: [], compression: "none",
                              entries: [LayerEntry(path: text, kind: .file, mode: 0o644, size: 0, digest: try Self.digest(""))],
                              whiteouts: [text], opaqueDirs: [], skipped: [])
        #expect(Self.difference(LayerManifestJSON.encode(m), try Self.foundationBytes(m)) == nil)
    }

    @Test func unpackWritesTheSameLayerJSONAsBefore() throws {
        let dir = try TempDir("layerjson")
        let tarPath = dir.path + "/layer.tar"
        try writeTar(LayerUnpackerTests.sampleEntries + [
            .file("odd/quote\"back\\slash\ttab é", "q"),
            TarEntry(path: "dev/null", kind: .charDevice(1, 3), mode: 0o666),
            .file("../outside", "no"),
        ], to: tarPath)
        let store = try Store.create(at: dir.path + "/store")
        let blob = try store.ingest(fileAt: tarPath).digest
        let m = try store.unpackLayer(blob: blob)
        #expect(m.skipped.count == 2)
        #expect(m.entry("odd/quote\"back\\slash\ttab é")?.kind == .file)
        let bytes = try FileIO.readFile(store.layout.layerManifest(m.diffID))
        #expect(Self.difference(bytes, try Self.foundationBytes(m)) == nil)
        #expect(try store.layer(diffID: m.diffID) == m)
    }
}
