// mkrepo, showconf and the configuration as seen through the udocker binary.
import TestSupport
import Testing
import CAS

@Suite struct RepositoryCommandTests {
    func read(_ path: String) -> String {
        (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? "<missing \(path)>"
    }

    @Test func mkrepoCreatesTheLayoutAndIsIdempotent() throws {
        let tmp = makeTempDirectory("mkrepo")
        defer { try? FileIO.removeTree(tmp) }
        let repo = tmp + "/repo"
        let r = runUdocker(["mkrepo", repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr == "")
        #expect(r.stdout.contains("Info: created repository: \(repo)\n"))
        #expect(r.stdout.contains("Info: created store: \(repo)/store\n"))
        for sub in ["repos", "layers", "containers", "bin", "lib", "doc",
                    "store/blobs/sha256", "store/layers/sha256", "store/repositories"] {
            #expect(FileIO.isDirectory(repo + "/" + sub), "missing \(sub)")
        }
        #expect(read(repo + "/store/store.json").hasPrefix("{\"format\":1,\"id\":\""))
        #expect(read(repo + "/store.path") == repo + "/store\n")

        let again = runUdocker(["mkrepo", repo])
        #expect(again.status == 0)
        #expect(again.stdout.contains("Info: repository already exists: \(repo)\n"))
        #expect(again.stdout.contains("Info: using existing store: \(repo)/store\n"))

        let quiet = runUdocker(["-q", "mkrepo", repo])
        #expect(quiet.status == 0)
        #expect(quiet.stdout == "")
    }

    @Test func mkrepoWithASharedStore() throws {
        let tmp = makeTempDirectory("mkrepo")
        defer { try? FileIO.removeTree(tmp) }
        let store = tmp + "/store"
        let a = runUdocker(["mkrepo", "--store=" + store, tmp + "/a"])
        let b = runUdocker(["mkrepo", "--store", store, tmp + "/b"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        #expect(a.stdout.contains("Info: created store: \(store)\n"))
        #expect(b.stdout.contains("Info: using existing store: \(store)\n"))
        let registered = try FileIO.listDirectory(store + "/repositories").map { read(store + "/repositories/" + $0) }
        #expect(Set(registered) == [tmp + "/a\n", tmp + "/b\n"])
        #expect(!FileIO.exists(tmp + "/a/store"))

        let conflict = runUdocker(["mkrepo", "--store=" + tmp + "/other", tmp + "/a"])
        #expect(conflict.status == 1)
        #expect(conflict.stderr.hasPrefix("Error: repository \(tmp)/a already uses the store \(store)"))
        #expect(conflict.stderr.filter { $0 == "\n" }.count == 1)
    }

    @Test func mkrepoRefusesANonEmptyDirectory() throws {
        let tmp = makeTempDirectory("mkrepo")
        defer { try? FileIO.removeTree(tmp) }
        try FileIO.writeAtomically(tmp + "/notes.txt", Array("mine".utf8))
        let r = runUdocker(["mkrepo", tmp])
        #expect(r.status == 1)
        #expect(r.stderr == "Error: \(tmp) exists, is not empty and is not a udocker repository: give a new or empty directory\n")
        #expect(!FileIO.exists(tmp + "/repos"))
    }

    @Test func showconfPrintsTheEffectiveConfiguration() throws {
        let tmp = makeTempDirectory("showconf")
        defer { try? FileIO.removeTree(tmp) }
        try FileIO.mkdirs(tmp + "/.udocker")
        try FileIO.writeAtomically(tmp + "/.udocker/udocker.conf",
                                   Array("[DEFAULT]\ntimeout = 99\nsite_key = kept\n".utf8))
        let r = runUdocker(["--repo", tmp + "/r", "showconf"],
                           env: ["HOME": tmp, "UDOCKER_REGISTRY": "https://registry.example"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == String(repeating: "-", count: 80))
        #expect(lines.dropFirst().first == "\t\tConfiguration options")
        #expect(lines.contains("verbose_level = 3"))
        #expect(lines.contains("homedir = \(tmp)/.udocker"))
        #expect(lines.contains("topdir = \(tmp)/r"))
        #expect(lines.contains("timeout = 99"))
        #expect(lines.contains("site_key = kept"))
        #expect(lines.contains("dockerio_registry_url = https://registry.example"))
        #expect(lines.contains("cmd = ['bash', '-i']"))
        #expect(lines.contains("storedir = None"))
        // showconf reads, it does not create the repository.
        #expect(!FileIO.exists(tmp + "/r"))

        let debug = runUdocker(["-D", "showconf"], env: ["HOME": tmp])
        #expect(debug.stdout.contains("\nverbose_level = 5\n"))
    }

    @Test func malformedConfigurationIsOneErrorLine() throws {
        let tmp = makeTempDirectory("badconf")
        defer { try? FileIO.removeTree(tmp) }
        try FileIO.mkdirs(tmp + "/.udocker")
        let conf = tmp + "/.udocker/udocker.conf"
        try FileIO.writeAtomically(conf, Array("[DEFAULT]\nverbose_level = 3\nno equals sign here\n".utf8))
        let r = runUdocker(["showconf"], env: ["HOME": tmp])
        #expect(r.status == 1)
        #expect(r.stdout == "")
        #expect(r.stderr.hasPrefix("Error: \(conf) line 3: expected 'key = value', found 'no equals sign here'"))
        #expect(r.stderr.filter { $0 == "\n" }.count == 1)
        // Help still works with a broken configuration.
        #expect(runUdocker(["--help"], env: ["HOME": tmp]).status == 0)

        let missing = runUdocker(["--config=" + tmp + "/nope.conf", "version"])
        #expect(missing.status == 1)
        #expect(missing.stderr == "Error: configuration file \(tmp)/nope.conf does not exist: check the path given with --config\n")
    }
}
