// Where store files are not sealed (no subordinate uids, or UDOCKER_STORE_PROTECTION=detect): a run that
// changes a linked file in place is reported with the containers sharing it, `store verify` names the
// image and containers, and `store verify --repair` restores every container but the one that changed it.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct StoreChangeDetectionTests {
    /// What a file looks like, for comparing containers with the image.
    struct FileState: Equatable, CustomStringConvertible {
        var content: [UInt8]
        var mode: mode_t
        var mtime: Int
        var description: String { "\(String(decoding: content.prefix(40), as: UTF8.self)) mode \(String(mode, radix: 8)) mtime \(mtime)" }
    }

    static func state(_ path: String) -> FileState? {
        var st = stat()
        guard lstat(path, &st) == 0, let bytes = try? FileIO.readFile(path) else { return nil }
        return FileState(content: bytes, mode: st.st_mode & 0o7777, mtime: st.st_mtim.tv_sec)
    }

    static let files = ["usr/share/doc/notes.txt", "usr/lib/os-release", "bin/busybox"]

    func makeRepo(_ label: String) throws -> ImportedBusyboxRepo {
        // As the user with subordinate ids, detection is what UDOCKER_STORE_PROTECTION=detect asks for;
        // as the one without (scripts/test.sh's second pass), it is all the host allows.
        let env = StoreProtectionExpectation.detectOnly ? [:] : ["UDOCKER_STORE_PROTECTION": "detect"]
        return try ImportedBusyboxRepo(label: label, extraFiles: ["usr/share/doc/notes.txt": "from the image\n",
                                                                  "usr/lib/os-release": "ID=test\n"],
                                       links: ["etc/os-release": "../usr/lib/os-release"], env: env)
    }

    @Test(arguments: ["auto", "link"])
    func aRunThatChangesStoreFilesIsReportedAndRepairRestoresTheOthers(materialize: String) throws {
        let r = try makeRepo("detect-\(materialize)")
        let info = r.run(["info"])
        #expect(info.stdout.contains("store protection: detect only"), "\(info.stdout)")
        for n in ["c1", "c2"] {
            let c = r.run(["create", "--name=" + n, "--materialize=" + materialize, "test/bb:1"])
            try #require(c.status == 0, "\(c.stderr)")
        }
        let c1 = r.repo + "/containers/c1/ROOT/", c2 = r.repo + "/containers/c2/ROOT/"
        var image = [String: FileState]()
        for f in Self.files { image[f] = Self.state(c2 + f) }
        #expect(image.count == Self.files.count)

        // Emulated root (P1, the default) appends in place, through the /etc symlink too, and plants a
        // setuid bit and a new mtime.
        let run = r.run(["run", "--nobanner", "c1", "/bin/sh", "-c",
                         "echo X >> /usr/share/doc/notes.txt; echo X >> /etc/os-release; busybox chmod 6555 /bin/busybox; echo ran"])
        #expect(run.stdout == "ran\n", "\(run.stderr)")
        #expect(run.status == 0)
        for f in Self.files { #expect(run.stderr.contains("/" + f), "\(f) not reported: \(run.stderr)") }
        #expect(run.stderr.contains("also in container(s) c2"), "\(run.stderr)")
        #expect(run.stderr.contains("udocker store verify --repair"), "\(run.stderr)")
        // c1 keeps its change in its own copy; c2 shares the changed store file until the repair.
        #expect(Self.state(c1 + "usr/share/doc/notes.txt")?.content == Array("from the image\nX\n".utf8))
        #expect(Self.state(c2 + "usr/share/doc/notes.txt")?.content == Array("from the image\nX\n".utf8))
        var st = stat()
        #expect(lstat(c1 + "usr/share/doc/notes.txt", &st) == 0 && st.st_nlink == 1)

        let found = r.run(["store", "verify"])
        #expect(found.status == 1)
        for f in Self.files {
            #expect(found.stdout.contains("/\(f) of unpacked layer"), "\(f): \(found.stdout)")
        }
        #expect(found.stdout.contains("held by image(s) test/bb:1; container(s) c2"), "\(found.stdout)")
        #expect(found.stdout.contains("mode 06555"), "\(found.stdout)")

        let repaired = r.run(["store", "verify", "--repair"])
        #expect(repaired.status == 0, "\(repaired.stdout) \(repaired.stderr)")
        #expect(repaired.stdout.contains("all problems were repaired"), "\(repaired.stdout)")
        #expect(r.run(["store", "verify"]).status == 0)
        let c3 = r.run(["create", "--name=c3", "--materialize=" + materialize, "test/bb:1"])
        #expect(c3.status == 0)
        for f in Self.files {
            #expect(Self.state(c2 + f) == image[f], "c2 \(f)")
            #expect(Self.state(r.repo + "/containers/c3/ROOT/" + f) == image[f], "c3 \(f)")
        }
        // What c1's user did stays c1's.
        #expect(Self.state(c1 + "usr/share/doc/notes.txt")?.content == Array("from the image\nX\n".utf8))
        #expect((Self.state(c1 + "bin/busybox")?.mode ?? 0) & 0o6000 == 0o6000)
        // A second run that changes nothing reports nothing.
        let quiet = r.run(["run", "--nobanner", "c2", "/bin/cat", "/etc/os-release"])
        #expect(quiet.stdout == "ID=test\n" && !quiet.stderr.contains("Warning"), "\(quiet.stderr)")
    }

    @Test func aTouchedStoreFileIsFoundByVerifyAndItsMtimeRestored() throws {
        let r = try makeRepo("detect-touch")
        try #require(r.run(["create", "--name=c1", "--materialize=link", "test/bb:1"]).status == 0)
        try #require(r.run(["create", "--name=c2", "--materialize=link", "test/bb:1"]).status == 0)
        let before = Self.state(r.repo + "/containers/c2/ROOT/usr/lib/os-release")
        let run = r.run(["run", "--nobanner", "--user=root", "c1", "/bin/sh", "-c", "busybox touch -d 2001-01-01 /usr/lib/os-release"])
        #expect(run.status == 0)
        #expect(run.stderr.contains("/usr/lib/os-release (mtime)"), "\(run.stderr)")
        let found = r.run(["store", "verify"])
        #expect(found.status == 1 && found.stdout.contains("mtime changed"), "\(found.stdout)")
        #expect(r.run(["store", "verify", "--repair"]).status == 0)
        #expect(Self.state(r.repo + "/containers/c2/ROOT/usr/lib/os-release") == before)
    }

    @Test func copyContainersAndUnchangedRunsAreNotChecked() throws {
        let r = try makeRepo("detect-copy")
        try #require(r.run(["create", "--name=c1", "--materialize=copy", "test/bb:1"]).status == 0)
        let run = r.run(["run", "--nobanner", "c1", "/bin/sh", "-c", "echo X >> /usr/share/doc/notes.txt"])
        #expect(run.status == 0 && !run.stderr.contains("Warning"), "\(run.stderr)")
        #expect(r.run(["store", "verify"]).status == 0)
        let info = try #require(ContainerFiles.materializeJSON(r.repo + "/containers/c1"))
        #expect(info["protection"] as? String == "detect")
    }
}

enum ContainerFiles {
    /// materialize.json of a container directory, parsed.
    static func materializeJSON(_ dir: String) -> [String: Any]? {
        guard let bytes = try? FileIO.readFile(dir + "/materialize.json") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }
}
