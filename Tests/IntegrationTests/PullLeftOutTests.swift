// `pull` says, once, what the layers it unpacked left out (hostile names, links out of the layer),
// and stays quiet about what every image leaves out (device nodes of /dev).
import TestSupport
import Testing
import CAS
import Foundation

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct PullLeftOutTests {
    @Test func pullNamesWhatALayerLeftOutOnce() throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let work = makeTempDirectory("left-out")
        defer { try? FileIO.removeTree(work) }

        var hostile = TarBuilder()
        hostile.directory("etc")
        hostile.file("etc/ok", "fine\n")
        hostile.file("../../escape", "out\n")
        hostile.hardlink("etc/passwd-link", to: "/etc/passwd")
        hostile.directory("dev")
        hostile.device("dev/null", major: 1, minor: 3)
        try hostile.write(to: work + "/hostile.tar")
        var plain = TarBuilder()
        plain.directory("dev")
        plain.device("dev/null", major: 1, minor: 3)
        plain.file("hello", "hi\n")
        try plain.write(to: work + "/plain.tar")

        try registry.pushImage(tar: work + "/hostile.tar", as: "test/hostile", tag: "1", work: work)
        try registry.pushImage(tar: work + "/plain.tar", as: "test/plain", tag: "1", work: work)

        let env = ["UDOCKER_DIR": work + "/repo", "UDOCKER_REGISTRY": registry.url]
        let first = runUdocker(["pull", "test/hostile:1"], env: env, killAfter: 120)
        #expect(first.status == 0, "\(first.stderr)")
        let warnings = first.stderr.split(separator: "\n").filter { $0.hasPrefix("Warning: ") }
        #expect(warnings.count == 1, "\(first.stderr)")
        let line = warnings.first.map(String.init) ?? ""
        #expect(line.contains("left out 2 entries") && line.contains("'../../escape'") && line.contains("'etc/passwd-link'"), "\(line)")
        #expect(!line.contains("dev/null"), "device nodes of /dev are no news: \(line)")

        // Said once: the layer is in the store now.
        let again = runUdocker(["pull", "test/hostile:1"], env: env, killAfter: 120)
        #expect(again.status == 0 && !again.stderr.contains("Warning:"), "\(again.stderr)")
        let quiet = runUdocker(["pull", "test/plain:1"], env: env, killAfter: 120)
        #expect(quiet.status == 0 && !quiet.stderr.contains("Warning:"), "\(quiet.stderr)")
    }
}
