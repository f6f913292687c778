// Container directories that try to reach the host through symbolic links: `import --clone` archives
// whose ROOT, runtime/ or metadata files are links, and container directories changed so by hand.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container directory links", .timeLimit(.minutes(2)))
struct ContainerDirectoryLinkTests {
    /// A directory of the host that no command may change, with one file in it.
    static func hostDirectory(_ r: ImportedBusyboxRepo, _ label: String) throws -> String {
        let dir = r.tmp + "/host-" + label
        try FileIO.mkdirs(dir)
        try writeFile(dir + "/marker", "the host's own file\n")
        return dir
    }

    static func containerIDs(_ r: ImportedBusyboxRepo) -> Set<String> {
        Set(((try? FileIO.listDirectory(r.repo + "/containers")) ?? []).filter { e in
            var st = stat()
            return !e.hasPrefix(".") && lstat(r.repo + "/containers/" + e, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
        })
    }

    @Test("import --clone refuses a container directory whose ROOT, runtime/ or a metadata file is a symlink",
          arguments: ["ROOT", "runtime", "container.json", "execmode", "imagerepo.name", "materialize.json",
                      ".accounts.lock", "runtime/passwd"])
    func importCloneRefusesLinks(entry: String) throws {
        let r = try ImportedBusyboxRepo(label: "clone-link")
        let host = try Self.hostDirectory(r, "dir")
        let before = try TreeSnapshot(host)
        let existing = Self.containerIDs(r)

        var t = TarBuilder()
        if entry == "ROOT" {
            t.symlink("ROOT", to: host)
        } else {
            t.directory("ROOT")
            t.directory("ROOT/etc")
            t.file("ROOT/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        }
        for f in ["container.json", "execmode", "imagerepo.name"] where f != entry {
            t.file(f, f == "container.json" ? "{\"config\": {}}" : f == "execmode" ? "P1" : "test/bb:1")
        }
        if entry.hasPrefix("runtime/") { t.directory("runtime") }
        if entry != "ROOT" { t.symlink(entry, to: entry == "runtime" ? host : host + "/marker") }
        let tar = r.tmp + "/clone-link.tar"
        try t.write(to: tar)

        let imp = r.run(["import", "--clone", "--name=evil", tar])
        #expect(imp.status != 0, "import --clone accepted a link at \(entry): \(imp.stdout)")
        #expect(imp.stderr.contains("Error:") && imp.stderr.contains("symbolic link"), "\(imp.stderr)")
        #expect(Self.containerIDs(r) == existing, "no container was added")
        #expect(!FileIO.exists(r.repo + "/containers/evil"), "the name was not made")
        // Even if it had been kept, running it must not write to the host.
        _ = r.run(["run", "--nobanner", "--user=1234", "evil", "/bin/true"])
        #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "the host directory is unchanged")
    }

    /// What replaces `entry` of a container's directory: a link to the host directory (ROOT: the
    /// container's own ROOT moved out, so the link leads to a working tree) or to the host's file.
    static func redirect(_ r: ImportedBusyboxRepo, id: String, entry: String) throws -> String {
        let dir = r.containerDir(id)
        let path = dir + "/" + entry
        if entry == "ROOT" {
            let host = r.tmp + "/host-root"
            try #require(rename(path, host) == 0)
            try #require(symlink(host, path) == 0)
            return host
        }
        let host = try hostDirectory(r, "dir")
        _ = try? runCommand("/bin/rm", ["-rf", path])
        try #require(symlink(entry == "runtime" ? host : host + "/marker", path) == 0)
        return host
    }

    @Test("commands refuse a container directory whose ROOT, runtime/ or a metadata file was made a symlink by hand",
          arguments: ["ROOT", "runtime", "container.json", "execmode", "imagerepo.name", "materialize.json", ".setup.lock"])
    func commandsRefuseLinks(entry: String) throws {
        let r = try ImportedBusyboxRepo(label: "dir-link")
        let id = try r.create("c")
        // The container has run once, so runtime/ and the account files exist as usual.
        _ = r.run(["run", "--nobanner", "--user=1234", "c", "/bin/true"])
        let host = try Self.redirect(r, id: id, entry: entry)
        let before = try TreeSnapshot(host)

        let refused: [[String]] = [
            ["run", "--nobanner", "c", "/bin/true"],
            ["run", "--nobanner", "--user=1234", "c", "/bin/true"],
            ["setup", "c"],
            ["setup", "--nvidia", "c"],
            ["setup", "--execmode=P2", "c"],
            ["setup", "--execmode=F1", "c"],
            ["setup", "--fixperm", "c"],
            ["setup", "--purge", "c"],
            ["clone", "--name=copy", "c"],
            ["export", "-o", r.tmp + "/out.tar", "c"],
            ["export", "--clone", "-o", r.tmp + "/out-clone.tar", "c"],
        ]
        for args in refused {
            let res = r.run(args)
            #expect(res.status != 0, "\(args.joined(separator: " ")) used a container whose \(entry) is a link: \(res.stdout)")
            #expect(res.stderr.contains("Error:") && res.stderr.contains("symbolic link"), "\(args): \(res.stderr)")
            #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "\(args): the host directory is unchanged")
        }
        #expect(!FileIO.exists(r.tmp + "/out.tar") && !FileIO.exists(r.tmp + "/out-clone.tar"))
        #expect(!FileIO.exists(r.repo + "/containers/copy"), "no clone was made")

        // rm removes the container and only the link, not what it points to.
        let rm = r.run(["rm", "c"])
        #expect(rm.status == 0, "\(rm.stderr)")
        #expect(!FileIO.exists(r.containerDir(id)))
        #expect(try TreeSnapshot(host).differences(from: before).isEmpty, "rm: the host directory is unchanged")
    }
}
