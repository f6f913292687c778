// Hostile input given to commands rather than fetched: container names that are not file names
// ('/', '..', control characters, over-long), and a plain `import` tarball whose entries climb out,
// are absolute, go through a link or hard-link a host file.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct HostileCommandInputTests {
    @Test("container names with '/', '..', '.', control characters or over 255 bytes are refused by create, name and rename")
    func containerNamesThatAreNotFileNamesAreRefused() throws {
        let r = try ImportedBusyboxRepo(label: "hostile-names")
        _ = try r.create("c")
        let before = Set(try FileIO.listDirectory(r.tmp))
        let beforeContainers = Set(try FileIO.listDirectory(r.repo + "/containers"))
        for name in ["a/b", "..", ".", "../escape", "../../escape", "/tmp/escape", "x\ny", "x\ty", String(repeating: "n", count: 256)] {
            for args in [["create", "--name=" + name, "test/bb:1"], ["name", "c", name], ["rename", "c", name]] {
                let res = r.run(args)
                #expect(res.status != 0, "\(args) was accepted: \(res.stdout)")
                #expect(res.stderr.contains("Error:") && res.stderr.contains("name"), "\(args): \(res.stderr)")
            }
        }
        #expect(Set(try FileIO.listDirectory(r.tmp)) == before, "nothing was made beside the repository")
        #expect(Set(try FileIO.listDirectory(r.repo + "/containers")) == beforeContainers, "no container or name was added")
        #expect(!FileIO.exists("/tmp/escape"))
        #expect(r.run(["run", "--nobanner", "c", "/bin/true"]).status == 0, "the container still has its name")
    }

    @Test func importOfAHostileTarballLeavesTheHostUntouched() throws {
        let r = try ImportedBusyboxRepo(label: "hostile-import")
        let outside = r.tmp + "/outside"
        try FileIO.mkdirs(outside)
        var t = TarBuilder()
        t.file("fine", "fine\n")
        t.file("../../../../../../.." + outside + "/dotdot", "pwned")
        t.file(outside + "/absolute", "pwned")
        t.symlink("out", to: outside)
        t.file("out/through-link", "pwned")
        t.hardlink("passwd", to: "/etc/passwd")
        t.hardlink("passwd2", to: "../../../../../../../etc/passwd")
        try t.write(to: r.tmp + "/evil.tar")
        let imp = r.run(["import", r.tmp + "/evil.tar", "evil:1"])
        #expect(imp.status == 0, "\(imp.stderr)")
        let c = r.run(["create", "--name=e", "evil:1"])
        #expect(c.status == 0, "\(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let root = r.containerDir(id) + "/ROOT"
        #expect(r.text(root + "/fine") == "fine\n")
        #expect(!FileIO.exists(root + "/passwd") && !FileIO.exists(root + "/passwd2"), "no hard link to a host file")
        #expect(!FileIO.exists(root + "/out/through-link"))
        #expect(try FileIO.listDirectory(outside).isEmpty, "nothing was written outside")
        #expect(r.run(["verify", "evil:1"]).status == 0)
    }
}
