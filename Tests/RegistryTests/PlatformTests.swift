// Platform selection from an index: exact match, variant fallback, the error listing what exists.
import TestSupport
import CAS
import Testing
@testable import Registry

@Suite struct PlatformTests {
    static func d(_ n: Int, _ os: String, _ arch: String, _ variant: String? = nil) throws -> Descriptor {
        Descriptor(mediaType: MediaType.ociManifest,
                   digest: try Digest(parsing: "sha256:" + String(repeating: String(n), count: 64)),
                   size: 1, platform: Platform(os: os, architecture: arch, variant: variant))
    }

    @Test func selection() throws {
        let index = ImageIndex(schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [
            try Self.d(1, "linux", "amd64"), try Self.d(2, "linux", "arm", "v6"), try Self.d(3, "linux", "arm", "v7"),
            try Self.d(4, "linux", "arm64"), try Self.d(5, "unknown", "unknown"), try Self.d(6, "linux", "ppc64le"),
        ])
        #expect(try index.select(Platform(parsing: "linux/amd64")).digest.hex.hasPrefix("1"))
        #expect(try index.select(Platform(parsing: "linux/arm/v7")).digest.hex.hasPrefix("3"))
        #expect(try index.select(Platform(parsing: "linux/arm64/v8")).digest.hex.hasPrefix("4"))
        #expect(try index.select(Platform(parsing: "linux/aarch64")).digest.hex.hasPrefix("4"))
        // A requested variant falls back to the entry without variant.
        #expect(try index.select(Platform(parsing: "linux/ppc64le/power9")).digest.hex.hasPrefix("6"))
        do {
            _ = try index.select(Platform(parsing: "linux/s390x"))
            Issue.record("s390x was found")
        } catch {
            let text = "\(error)"
            #expect(text.contains("linux/s390x") && text.contains("linux/arm/v7") && text.contains("--platform"))
            #expect(!text.contains("unknown"))
        }
        #expect(throws: RegistryError.invalidPlatform("linux")) { try Platform(parsing: "linux") }
        #expect(Platform.host.os == "linux")
    }
}
