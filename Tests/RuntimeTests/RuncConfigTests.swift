// runc's config.json written by hand is what JSONEncoder writes (sorted keys, slashes unescaped), for
// every field and for strings that need escapes.
import Foundation
import Testing
@testable import Runtime

@Suite struct RuncConfigTests {
    @Test func handWrittenConfigIsJSONEncodersOutput() throws {
        for terminal in [false, true] {
            let caps = OCIConfig.Capabilities(bounding: ["CAP_KILL", "CAP_CHOWN"], effective: ["CAP_KILL"], inheritable: [],
                                              permitted: ["CAP_KILL"], ambient: ["CAP_SETFCAP"])
            let config = OCIConfig(
                process: .init(terminal: terminal, user: .init(uid: 0, gid: 4_294_967_295), args: ["/bin/sh", "-c", "echo \"a\\\\b\" /x\n\t\u{1}é"],
                               env: ["PATH=/usr/bin:/bin", "E=\u{7f}\u{1f}"], cwd: "/home/ü", capabilities: caps, noNewPrivileges: !terminal),
                root: .init(path: "/var/tmp/r o/ROOT", readonly: terminal), hostname: "host.example",
                mounts: [.init(destination: "/proc", type: "none", source: "/proc", options: ["rbind"]),
                         .init(destination: "/d", type: "tmpfs", source: "tmpfs", options: [])],
                linux: .init(uidMappings: [.init(containerID: 0, hostID: 1000, size: 1)],
                             gidMappings: [.init(containerID: 0, hostID: 1001, size: 1), .init(containerID: 1, hostID: 100000, size: 65536)],
                             namespaces: [.init(type: "mount"), .init(type: "user")], maskedPaths: ["/proc/kcore"], readonlyPaths: []))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let expected = String(decoding: try encoder.encode(config), as: UTF8.self)
            #expect(String(decoding: config.json(), as: UTF8.self) == expected)
        }
    }
}
