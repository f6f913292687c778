// create, ps, name, rmname, rename, inspect, clone, protect, rm, setup and rmi of an image in use, through
// the udocker binary, with test/busybox:oci pulled from the shared test registry.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ContainerCommandTests {
    /// A repository with test/busybox:oci pulled.
    func pulled() throws -> ImageRepo {
        let r = try ImageRepo()
        let pull = r.run(["pull", "test/busybox:oci"])
        try #require(pull.status == 0, "\(pull.stderr)")
        return r
    }

    func create(_ r: ImageRepo, _ args: [String]) throws -> String {
        let c = r.run(["create"] + args)
        try #require(c.status == 0, "\(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.range(of: "^[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+-[a-z0-9]+$", options: .regularExpression) != nil, "\(id)")
        return id
    }

    func lstatOf(_ p: String) -> stat? {
        var st = stat()
        return lstat(p, &st) == 0 ? st : nil
    }

    @Test func createMakesUdockersLayoutAndPsListsIt() throws {
        let r = try pulled()
        let id = try create(r, ["--name=web", "test/busybox:oci"])
        let dir = r.repo + "/containers/" + id
        #expect(FileIO.isDirectory(dir + "/ROOT/bin"))
        #expect(String(decoding: try FileIO.readFile(dir + "/imagerepo.name"), as: UTF8.self) == "test/busybox:oci")
        #expect(String(decoding: try FileIO.readFile(dir + "/execmode"), as: UTF8.self) == "P1")
        let json = String(decoding: try FileIO.readFile(dir + "/container.json"), as: UTF8.self)
        #expect(json.hasPrefix("{\"") && json.contains("\"architecture\": \"amd64\""), "\(json)")   // Python's json.dump style
        let mat = String(decoding: try FileIO.readFile(dir + "/materialize.json"), as: UTF8.self)
        #expect(mat.contains("\"mode\" : \"auto\""), "\(mat)")
        #expect(ContainerCommandTests.readLink(r.repo + "/containers/web") == id)
        // /bin is linked in auto mode: the busybox binary is the store's inode.
        let bin = try #require(lstatOf(dir + "/ROOT/bin/busybox"))
        #expect(bin.st_nlink >= 2 && bin.st_mode & 0o222 == 0)
        #expect(((lstatOf(dir + "/ROOT/bin/sh")?.st_mode ?? 0) & S_IFMT) == S_IFLNK)

        let ps = r.run(["ps", "-m", "-s", "-p"])
        #expect(ps.status == 0)
        let lines = ps.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "CONTAINER ID".padding(toLength: 36, withPad: " ", startingAt: 0)
                + " P M MOD SIZE PLATFORM           NAMES              IMAGE               ")
        #expect(lines.count == 2)
        #expect(lines.last?.hasPrefix(id + " . W P1 ") == true, "\(ps.stdout)")
        #expect(lines.last?.contains("linux/amd64") == true)
        #expect(lines.last?.hasSuffix("['web']            test/busybox:oci    ") == true, "\(ps.stdout)")

        #expect(r.run(["inspect", "-p", "web"]).stdout == dir + "/ROOT\n")
        #expect(r.run(["inspect", id]).stdout.contains("    \"architecture\": \"amd64\","))
        #expect(r.run(["inspect", "test/busybox:oci"]).status == 0)
        let missing = r.run(["inspect", "nothing"])
        #expect(missing.status == 1 && missing.stderr.contains("not found"))
    }

    @Test func namesAreSymlinksAndFollowUdockersRules() throws {
        let r = try pulled()
        let id = try create(r, ["test/busybox:oci"])
        #expect(r.run(["name", id, "alpha"]).status == 0)
        let dup = r.run(["name", id, "alpha"])
        #expect(dup.status == 1 && dup.stderr.hasPrefix("Error: container name already exists: alpha"))
        for bad in ["a.b", "a/b", "a b", "a[1]"] {
            let b = r.run(["name", id, bad])
            #expect(b.status == 1 && b.stderr.hasPrefix("Error: invalid container name"), "\(bad): \(b.stderr)")
            #expect(b.stderr.split(separator: "\n").count == 1)
        }
        #expect(r.run(["rename", "alpha", "beta"]).status == 0)
        #expect(!FileIO.exists(r.repo + "/containers/alpha"))
        #expect(ContainerCommandTests.readLink(r.repo + "/containers/beta") == id)
        #expect(r.run(["inspect", "-p", "beta"]).stdout == r.repo + "/containers/\(id)/ROOT\n")
        let rm = r.run(["rmname", "beta"])
        #expect(rm.status == 0 && rm.stdout == "Info: container name: beta removed.\n")
        #expect(r.run(["rmname", "beta"]).status == 1)
        #expect(r.run(["rename", "beta", "gamma"]).status == 1)

        // create --name of a taken name: refused; with --force the container is made without the name.
        #expect(r.run(["name", id, "taken"]).status == 0)
        let refused = r.run(["create", "--name=taken", "test/busybox:oci"])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("Error: container name already exists: taken"))
        let forced = r.run(["create", "--force", "--name=taken", "test/busybox:oci"])
        #expect(forced.status == 0 && forced.stderr.contains("Warning: container name taken already exists"), "\(forced.stderr)")
        #expect(ContainerCommandTests.readLink(r.repo + "/containers/taken") == id)
        #expect(r.run(["create", "--name=bad.name", "test/busybox:oci"]).status == 1)
        #expect(r.run(["ps"]).stdout.split(separator: "\n").count == 3)   // header + 2: nothing made by the refusals
    }

    @Test func protectRmAndRmiWithContainers() throws {
        let r = try pulled()
        let id = try create(r, ["--name=keep", "--materialize=link", "test/busybox:oci"])
        #expect(r.run(["protect", "keep"]).status == 0)
        #expect(FileIO.exists(r.repo + "/containers/\(id)/PROTECT"))
        #expect(r.run(["ps"]).stdout.contains(id + " P W "))
        let refused = r.run(["rm", "keep"])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("Error: container keep is protected"))
        #expect(r.run(["unprotect", id]).status == 0)

        // As in udocker 1.3.17, rmi removes an image containers were created from; they stay, and
        // their refs keep the layers (also through a gc), which one Info line says.
        let layers = r.layerDirs
        let layerBlobs = Set(try r.layerBlobs("test/busybox", "oci"))
        let rmi = r.run(["rmi", "test/busybox:oci"])
        #expect(rmi.status == 0 && rmi.stderr == "", "\(rmi.stderr)")
        #expect(rmi.stdout == "Info: deleting image: test/busybox:oci\n"
                + "Info: the container(s) created from test/busybox:oci keep its layers in the store until they are removed: keep\n",
                "\(rmi.stdout)")
        #expect(!FileIO.exists(r.repo + "/repos/test/busybox/oci"))
        #expect(r.run(["images"]).stdout == "REPOSITORY\n")
        let gc = r.run(["store", "gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(r.layerDirs == layers)
        #expect(r.blobFiles == layerBlobs, "the layer blobs stay for the container, the manifest and config go")
        #expect(FileIO.exists(r.repo + "/containers/\(id)/ROOT/bin/busybox"))
        // ps shows the image the container was made from, as udocker does (imagerepo.name stays).
        let ps = r.run(["ps"]).stdout
        #expect(ps.contains(id + " . W " + "['keep']".padding(toLength: 18, withPad: " ", startingAt: 0) + " test/busybox:oci"), "\(ps)")
        if ExecutionModeSupport.unavailableReason("P1") == nil {
            let run = r.run(["run", "--nobanner", "keep", "/bin/sh", "-c", "echo still runs"])
            #expect(run.status == 0 && run.stdout == "still runs\n", "\(run.stdout)\(run.stderr)")
        }
        // rm releases the ref: the layers nothing else holds go with the container.
        let rm = r.run(["rm", "keep", "nosuch"])
        #expect(rm.status == 1 && rm.stderr.contains("container not found: nosuch"))
        #expect(!FileIO.exists(r.repo + "/containers/\(id)"))
        #expect(!FileIO.exists(r.repo + "/containers/keep"))
        #expect(r.layerDirs.isEmpty)
        #expect(r.blobFiles.isEmpty)
        #expect(r.run(["ps"]).stdout.split(separator: "\n").count == 1)
    }

    @Test func rmiOfAnImageWithoutContainersSaysNothingMoreAndForceRemovesADamagedRecord() throws {
        let r = try pulled()
        #expect(r.run(["tag", "test/busybox:oci", "mine/box:1"]).status == 0)
        let plain = r.run(["rmi", "mine/box:1"])
        #expect(plain.status == 0 && plain.stdout == "Info: deleting image: mine/box:1\n", "\(plain.stdout)")
        // A damaged record: refused without -f (the error says to use it), removed with it.
        try FileIO.writeAtomically(r.repo + "/repos/test/busybox/oci/image.json", Array("{".utf8))
        let refused = r.run(["rmi", "test/busybox:oci"])
        #expect(refused.status == 1 && refused.stderr.contains("udocker rmi -f"), "\(refused.stderr)")
        let forced = r.run(["rmi", "-f", "test/busybox:oci"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!FileIO.exists(r.repo + "/repos/test/busybox/oci"))
        #expect(r.layerDirs.isEmpty && r.blobFiles.isEmpty)
    }

    @Test func linkModeContainerRefusesInPlaceWritesAndVerifyPasses() throws {
        let r = try pulled()
        let id = try create(r, ["--materialize=link", "test/busybox:oci"])
        let file = r.repo + "/containers/\(id)/ROOT/bin/busybox"
        if geteuid() != 0 {   // root bypasses file permissions: the check means nothing as root
            let fd = open(file, O_WRONLY)
            let err = errno
            if fd >= 0 { close(fd) }
            #expect(fd < 0 && err == EACCES)
        }
        let v = r.run(["verify", "test/busybox:oci"])
        #expect(v.status == 0, "\(v.stderr)")
    }

    @Test func cloneOfALinkContainerCopiesNoData() throws {
        let r = try pulled()
        let id = try create(r, ["--materialize=link", "test/busybox:oci"])
        let clone = r.run(["clone", "--name=twin", id])
        #expect(clone.status == 0, "\(clone.stderr)")
        let cid = clone.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(cid != id)
        #expect(ContainerCommandTests.readLink(r.repo + "/containers/twin") == cid)
        let a = try #require(lstatOf(r.repo + "/containers/\(id)/ROOT/bin/busybox"))
        let b = try #require(lstatOf(r.repo + "/containers/\(cid)/ROOT/bin/busybox"))
        #expect(a.st_ino == b.st_ino)   // same store inode: no data copied
        #expect(String(decoding: try FileIO.readFile(r.repo + "/containers/\(cid)/imagerepo.name"), as: UTF8.self) == "test/busybox:oci")
        // The clone holds the layers too: removing the source and the image keeps them.
        #expect(r.run(["rm", id]).status == 0)
        #expect(r.run(["rmi", "-f", "test/busybox:oci"]).status == 0)
        #expect(FileIO.exists(r.repo + "/containers/\(cid)/ROOT/bin/busybox"))
        #expect(!r.layerDirs.isEmpty)
        #expect(r.run(["rm", "twin"]).status == 0)
        #expect(r.layerDirs.isEmpty)
    }

    /// Debian images carry device nodes in /dev (console, null, tty, zero, ...): no create says so but
    /// with -D, since every mode gives the container the host's /dev. A device elsewhere is a warning.
    @Test func createIsQuietAboutTheImagesDevNodes() throws {
        let r = try ImageRepo()
        var tar = TarBuilder()
        for d in ["bin", "dev", "opt"] { tar.directory(d) }
        tar.file("bin/busybox", try FileIO.readFile("/bin/busybox"), mode: 0o755)
        for (name, minor) in [("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)] {
            tar.device("dev/" + name, major: 1, minor: minor)
        }
        tar.device("dev/console", major: 5, minor: 1, mode: 0o600)
        try tar.write(to: r.tmp + "/rootfs.tar")
        #expect(r.run(["import", r.tmp + "/rootfs.tar", "test/devs:1"]).status == 0)
        for _ in 0..<2 {
            let c = r.run(["create", "test/devs:1"])
            #expect(c.status == 0 && c.stderr == "", "\(c.stderr)")
        }
        let debug = r.run(["-D", "create", "test/devs:1"])
        #expect(debug.stderr.contains("6 device node(s) of the image's /dev not created") && debug.stderr.contains("/dev/console"),
                "\(debug.stderr)")

        tar.device("opt/disk", major: 8, minor: 0, block: true)
        try tar.write(to: r.tmp + "/other.tar")
        #expect(r.run(["import", r.tmp + "/other.tar", "test/devs:2"]).status == 0)
        let other = r.run(["create", "test/devs:2"])
        #expect(other.status == 0 && other.stderr == "Warning: device node '/opt/disk' not created: udocker containers use the host's /dev\n",
                "\(other.stderr)")
    }

    /// rm, rmi and export say what they delete or write only once nothing refuses (udocker's order).
    @Test func refusalsSayNothingOfDeletingOrExporting() throws {
        let r = try pulled()
        _ = try create(r, ["--name=keep", "test/busybox:oci"])
        #expect(r.run(["protect", "keep"]).status == 0)
        let rm = r.run(["rm", "keep"])
        #expect(rm.status == 1 && rm.stdout == "" && rm.stderr.hasPrefix("Error: container keep is protected"), "\(rm)")
        let missing = r.run(["rm", "nosuch"])
        #expect(missing.status == 1 && missing.stdout == "", "\(missing)")
        #expect(r.run(["protect", "test/busybox:oci"]).status == 0)
        let rmi = r.run(["rmi", "test/busybox:oci"])
        #expect(rmi.status == 1 && rmi.stdout == "" && rmi.stderr.contains("protected"), "\(rmi)")
        let export = r.run(["export", "-o", r.tmp + "/x.tar", "nosuch"])
        #expect(export.status == 1 && export.stdout == "", "\(export)")
        // What is done is still said.
        #expect(r.run(["unprotect", "keep"]).status == 0)
        #expect(r.run(["rm", "keep"]).stdout.hasPrefix("Info: deleting container: "))
    }

    @Test func createFailureRemovesTheHalfMadeContainer() throws {
        let r = try pulled()
        // Damage the store: the layer's busybox file is gone.
        let layer = try #require(r.layerDirs.first)
        let root = r.store + "/layers/sha256/\(layer)/root"
        #expect(unlink(root + "/bin/busybox") == 0)
        let c = r.run(["create", "--name=broken", "--materialize=copy", "test/busybox:oci"])
        #expect(c.status == 1)
        #expect(c.stderr.hasPrefix("Error: creating a container from test/busybox:oci failed:"), "\(c.stderr)")
        #expect(c.stderr.contains("the partly made container was removed"))
        #expect(try FileIO.listDirectory(r.repo + "/containers").isEmpty)
        let refs = try FileIO.listDirectory(r.store + "/refs").filter { $0.hasSuffix(".json") }
        #expect(refs.count == 1)   // the image's only
    }

    @Test func setupFixpermAndPurge() throws {
        let r = try pulled()
        let id = try create(r, ["--materialize=copy", "test/busybox:oci"])
        let bin = r.repo + "/containers/\(id)/ROOT/bin"
        #expect(chmod(bin, 0o500) == 0)
        #expect(chmod(bin + "/busybox", 0o111) == 0)
        let s = r.run(["setup", "--fixperm", id])
        #expect(s.status == 0, "\(s.stderr)")
        #expect((lstatOf(bin)?.st_mode ?? 0) & 0o700 == 0o700)
        #expect((lstatOf(bin + "/busybox")?.st_mode ?? 0) & 0o400 == 0o400)
        #expect(r.run(["setup", "--purge", id]).status == 0)
        let show = r.run(["setup", id])
        #expect(show.stdout == "execmode: P1\nnvidiamode: False\n")
        // busybox-static has no dynamic loader: the Fakechroot modes cannot run it, the mode stays.
        let x = r.run(["setup", "--execmode=F3", id])
        #expect(x.status == 1 && x.stderr.contains("no dynamic loader"), "\(x.stderr)")
        #expect(r.run(["setup", id]).stdout == "execmode: P1\nnvidiamode: False\n")
        #expect(r.run(["setup", "nosuch"]).status == 1)
    }

    static func readLink(_ p: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(p, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
