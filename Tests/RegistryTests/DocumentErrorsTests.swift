// A manifest or config with a wrong field is reported by the field's path and what was expected,
// not with Swift's DecodingError text.
import CAS
import Foundation
import Testing
@testable import Registry

@Suite struct DocumentErrorsTests {
    let digest = Digest(bytes: [UInt8](repeating: 0xaa, count: 32))

    func manifestError(_ json: String) -> String {
        do {
            _ = try FetchedManifest.parse(raw: Array(json.utf8), mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digest)
            return "parsed"
        } catch { return "\(error)" }
    }

    @Test func aWrongFieldIsNamedByItsPath() {
        let layer = #"{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:\#(String(repeating: "b", count: 64))","size":"big"}"#
        let config = #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:\#(String(repeating: "c", count: 64))","size":2}"#
        let wrongSize = manifestError(#"{"schemaVersion":2,"config":\#(config),"layers":[\#(layer)]}"#)
        #expect(wrongSize.contains("field 'layers[0].size': expected a number"), "\(wrongSize)")
        let missing = manifestError(#"{"schemaVersion":2,"layers":[]}"#)
        #expect(missing.contains("field 'config': missing"), "\(missing)")
        let notJSON = manifestError("<html>oops</html>")
        #expect(notJSON.contains("not valid JSON"), "\(notJSON)")
        for text in [wrongSize, missing, notJSON] {
            #expect(!text.contains("DecodingError") && !text.contains("CodingKeys") && !text.contains("debugDescription"), "\(text)")
        }
        do {
            _ = try ImageConfigSummary.parse(Array(#"{"architecture":5,"rootfs":{"diff_ids":[]}}"#.utf8))
            Issue.record("parsed")
        } catch {
            #expect("\(error)".contains("field 'architecture': expected a string"), "\(error)")
        }
    }
}
