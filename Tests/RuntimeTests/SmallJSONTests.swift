// The JSON reader of the files every run reads agrees with Foundation's on them, and refuses what
// is not JSON.
import Foundation
import Testing
import CAS
@testable import Runtime

@Suite struct SmallJSONTests {
    @Test func valuesAndEscapes() {
        let text = #"{ "a" : [1, -2.5e3, true, false, null], "s": "x\"y\\z\/\n\u00e9\ud83d\ude00é", "o": {}, "e": [] }"#
        let v = SmallJSON.parse(Array(text.utf8))
        #expect(v?["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(v?["s"]?.string == "x\"y\\z/\né😀é")
        #expect(v?["o"] == .object([:]) && v?["e"] == .array([]))
        for bad in ["", "{", "{\"a\":}", "[1,]", "{\"a\":1,}", "\"unterminated", "{\"a\":1} x", "tru", "\"\u{1}\"", "[1 2]"] {
            #expect(SmallJSON.parse(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func materializeInfoReadsWhatCreateWrites() throws {
        let d = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        var report = MaterializeReport()
        report.linked = 18
        report.copied = 5
        for info in [MaterializeInfo(mode: .auto, linkDirs: ["/usr", "/bin"], layers: [d, d], report: report, sealed: true),
                     MaterializeInfo(mode: .copy, linkDirs: [], layers: [], report: report)] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let bytes = [UInt8](try encoder.encode(info))
            #expect(MaterializeInfo(json: bytes) == info)
            #expect(MaterializeInfo(json: bytes) == (try JSONDecoder().decode(MaterializeInfo.self, from: Data(bytes))))
        }
        // An older file without "protection" reads as nil, as JSONDecoder reads it.
        let old = Array(#"{"copied":0,"created":"2026-01-01T00:00:00Z","format":1,"layers":[],"linkDirs":[],"linked":3,"mode":"link"}"#.utf8)
        #expect(MaterializeInfo(json: old)?.protection == nil && MaterializeInfo(json: old)?.linked == 3)
    }
}
