// Names and digests an attacker (a registry, an archive, a script) might hand udocker: digests of
// other algorithms or malformed hex, image names with "..", NUL, control characters or hosts that
// are not hosts. Each is refused before it can name a path or a request.
import CAS
import Foundation
import Testing
@testable import Registry

@Suite struct HostileNamesTests {
    @Test func onlyWellFormedSha256DigestsAreAccepted() {
        let hex = String(repeating: "ab", count: 32)
        #expect((try? Digest(parsing: "sha256:" + hex)) != nil)
        let short = String(hex.dropLast()), last2 = String(hex.dropLast(2)), tail = String(hex.dropFirst(6))
        let bads: [String] = ["sha512:" + hex + hex, "md5:" + String(hex.prefix(32)), "sha256:" + hex.uppercased(),
                              "sha256:" + short, "sha256:" + hex + "0", "sha256:../../" + tail,
                              "sha256:" + short + "\0", "sha256:", ":" + hex, "sha256:" + last2 + "zz"]
        for bad in bads {
            #expect((try? Digest(parsing: bad)) == nil, "accepted \(bad)")
        }
    }

    @Test func imageNamesThatAreNotNamesAreRefused() {
        #expect((try? ImageReference.parse("library/busybox:1.36")) != nil)
        for bad in ["../etc/passwd", "a/../../b", "busy\0box", "busy\nbox:1", "busybox:ta\tg", "Busybox",
                    "busybox:" + String(repeating: "t", count: 129), "/busybox", "busybox/", "a//b",
                    "busybox@sha256:1234", "busybox:", "", "../x", "host..name/x", ".host/x", "-host.org/x",
                    "host.org:0/x", "host.org:99999/x", "host.org:/x"] {
            #expect((try? ImageReference.parse(bad)) == nil, "accepted \(bad.debugDescription)")
        }
    }
}
