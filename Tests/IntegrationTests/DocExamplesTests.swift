// Every `$ ` example of the README and the user manual, run as written, in page order, against a
// local registry that plays the site registry (`UDOCKER_REGISTRY`) holding busybox, debian:12 and a
// two-platform ubuntu:22.04; blocks marked `<!-- not run: REASON -->` are counted, not run, and
// blocks marked `<!-- run in: checkout -->` run in the package's directory.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The registry the pages' examples pull from, filled once per test process.
final class DocRegistry: @unchecked Sendable {
    // Written once in init, then only read: safe to share between tests.
    let registry: TestRegistry
    static let shared: Result<DocRegistry, any Error> = Result { try DocRegistry() }

    private init() throws {
        registry = try TestRegistry()
        BackgroundProcesses.removeAtExit(registry.dir)
        let work = makeTempDir("doc-images")
        defer { removeTree(work) }
        // busybox: busybox-static with a link for each applet, as Docker Hub's image has them.
        try FileIO.mkdirs(work + "/busybox/bin")
        try FileManager.default.copyItem(atPath: "/usr/bin/busybox", toPath: work + "/busybox/bin/busybox")
        let applets = String(decoding: try runCommand("/usr/bin/busybox", ["--list"]), as: UTF8.self)
        for applet in applets.split(separator: "\n") where applet != "busybox" {
            try FileManager.default.createSymbolicLink(atPath: work + "/busybox/bin/" + applet, withDestinationPath: "busybox")
        }
        _ = try runCommand("/bin/tar", ["-C", work + "/busybox", "-cf", work + "/busybox.tar", "bin"])
        // debian:12: the host's programs, dpkg and bash's copyright file, as the examples use them.
        try FileIO.mkdirs(work + "/debian")
        try HostImage.makeRootfs(HostImageSpec(withDpkg: true, files: [
            "/usr/share/doc/bash/copyright": "This is the Debian prepackaged version of the GNU Bourne Again SHell.\n",
            "/etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        ]), at: work + "/debian")
        let top = try FileManager.default.contentsOfDirectory(atPath: work + "/debian").sorted()
        _ = try runCommand("/bin/tar", ["-C", work + "/debian", "--sort=name", "-cf", work + "/debian.tar"] + top)
        try FileIO.mkdirs(work + "/arm/etc")
        try writeFile(work + "/arm/etc/arch", "arm64\n")
        _ = try runCommand("/bin/tar", ["-C", work + "/arm", "-cf", work + "/arm.tar", "etc"])

        let layout = work + "/layout"
        let oci = try OCILayout(dir: layout)
        oci.tag(try oci.addImage(tar: work + "/busybox.tar", compression: "gzip", arch: "amd64"), as: "busybox")
        let debian = try oci.addImage(tar: work + "/debian.tar", compression: "gzip", arch: "amd64")
        oci.tag(debian, as: "debian")
        let arm = try oci.addImage(tar: work + "/arm.tar", compression: "gzip", arch: "arm64", variant: "v8")
        oci.tag(try oci.addIndex([debian, arm]), as: "ubuntu")
        try oci.writeIndex()
        try registry.push(layout: layout, tag: "busybox", to: "library/busybox", destTag: "latest")
        try registry.push(layout: layout, tag: "debian", to: "library/debian", destTag: "12")
        try registry.push(layout: layout, tag: "ubuntu", to: "library/ubuntu", destTag: "22.04", all: true)
    }
}

@Suite struct DocExamplesTests {
    static var packageRoot: String {
        var root = #filePath
        for _ in 0..<3 { root = FileIO.parent(of: root) }
        return root
    }

    /// A new home with `udocker` on PATH, and the environment a reader's shell would have.
    static func shell(_ label: String, registry: String) throws -> (home: String, env: [String: String]) {
        let home = makeTempDirectory(label)
        try FileIO.mkdirs(home + "/.bin")
        if geteuid() == 0 {
            // Written by rename, so no descriptor open for writing leaks into a child spawned meanwhile.
            try FileIO.writeAtomically(home + "/.bin/udocker", Array("#!/bin/sh\nexec '\(udockerBinaryPath())' --allow-root \"$@\"\n".utf8))
            chmod(home + "/.bin/udocker", 0o755)
        } else {
            try FileManager.default.createSymbolicLink(atPath: home + "/.bin/udocker", withDestinationPath: udockerBinaryPath())
        }
        let env = ["PATH": home + "/.bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8",
                   "USER": ProcessInfo.processInfo.environment["USER"] ?? "user", "UDOCKER_NOSYSCONF": "1",
                   "UDOCKER_REGISTRY": registry]
        return (home, env)
    }

    /// Runs the examples of `page` (relative to the package) in one home; records each that fails.
    func runPage(_ page: String) throws {
        let text = String(decoding: try FileIO.readFile(Self.packageRoot + "/" + page), as: UTF8.self)
        let examples = DocExamples.parse(text, file: page)
        let run = examples.filter { $0.notRun == nil }
        try #require(!run.isEmpty, "\(page) has no examples")
        let doc = try DocRegistry.shared.get()
        let (home, env) = try Self.shell("doc", registry: doc.registry.url)
        defer {
            _ = try? runCommand("/bin/chmod", ["-R", "u+rwX", home])
            removeTree(home)
        }
        var failed = 0
        for example in run {
            if let problem = DocExamples.check(example, home: home, checkout: Self.packageRoot, environment: env) {
                Issue.record(Comment(rawValue: problem))
                failed += 1
                // Later examples build on earlier ones: past a few failures the rest is noise.
                if failed == 8 { Issue.record("stopped after 8 failing examples"); break }
            }
        }
        let skipped = examples.filter { $0.notRun != nil }
        print("\(page): \(run.count) examples run, \(failed) failed; \(skipped.count) not run: "
              + Set(skipped.compactMap(\.notRun)).sorted().joined(separator: "; "))
    }

    @Test func manualExamplesRunAsWritten() throws { try runPage("docs/manual.md") }

    @Test func readmeExamplesRunAsWritten() throws { try runPage("README.md") }

    /// The checker itself: an example that fails, exits otherwise than promised or does not print
    /// its promised line is caught; one that does as shown passes.
    @Test func aWrongExampleIsCaught() throws {
        let page = """
            ```
            $ udocker images
            REPOSITORY
            $ udocker rmi nothere:1
            Error: … nothere:1 …
            $ udocker pull no/such:image
            $ udocker version     # exits 3
            $ udocker images
            Info: something udocker never says
            ```
            <!-- not run: only an example -->
            ```
            $ false
            ```
            """
        let examples = DocExamples.parse(page, file: "page.md")
        #expect(examples.map(\.line) == [2, 4, 6, 7, 8, 13])
        #expect(examples.last?.notRun == "only an example")
        let doc = try DocRegistry.shared.get()
        let (home, env) = try Self.shell("doc-check", registry: doc.registry.url)
        defer { removeTree(home) }
        let verdicts = examples.dropLast().map { DocExamples.check($0, home: home, environment: env) == nil }
        #expect(verdicts == [true, true, false, false, false])
    }
}
