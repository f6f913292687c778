// Group stores with real users: the test user, the peer (its own subordinate ids) and a member without
// subordinate ids share one store in a group-owned directory, directly and through FUSE: concurrent
// pulls, private layer copies, runs that write linked files, GC across members, kill -9, permissions.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A group store in the fixture's directory, a repository of the test user on it, and the other
/// members' repositories (in their homes) on it.
final class GroupRepos {
    let fixture: GroupFixture
    let tmp: String
    let name: String
    /// The store as this user reaches it (directly, or through FUSE), and as the others do.
    let store: String
    let otherStore: String
    var repo: String { tmp + "/repo" }
    let registry: String
    let udocker = udockerBinaryPath()

    init(throughFUSE: Bool = false) throws {
        fixture = try #require(GroupFixture.shared)
        registry = try SharedRegistry.get().registry.url
        tmp = makeTempDirectory("group")
        name = "t-\(UInt32.random(in: 0...UInt32.max))"
        otherStore = fixture.dir + "/" + name
        store = throughFUSE ? try #require(fixture.fuse) + "/" + name : otherStore
        let mk = run(["mkrepo", "--store=" + store, "--group=" + fixture.group, repo])
        try #require(mk.status == 0, "\(mk.stderr)")
    }

    deinit {
        for m in [fixture.peer, fixture.nosub] { _ = try? m.run("rm -rf $HOME/group-tests/\(name)") }
        _ = try? FileIO.removeTree(otherStore)
        try? FileIO.removeTree(tmp)
    }

    var env: [String: String] { ["UDOCKER_DIR": repo, "UDOCKER_REGISTRY": registry, "HOME": tmp] }

    /// udocker as the test user.
    func run(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: env.merging(extra) { $1 })
    }

    /// The shell line running udocker as another member, in its repository of this store (made, or
    /// joined, first).
    func line(_ member: SSHPeer, _ args: [String], env extra: String = "") -> String {
        let repo = "$HOME/group-tests/\(name)/repo"
        let prefix = "env UDOCKER_DIR=\(repo) UDOCKER_REGISTRY=\(registry) \(extra) \(udocker)"
        // umask 077: the store must stay usable to the group whatever a member's umask.
        return "umask 077; \(udocker) -q mkrepo --store=\(Self.quote(otherStore)) --group=\(fixture.group) \(repo) && "
            + prefix + " " + args.map(Self.quote).joined(separator: " ")
    }

    /// udocker as another member.
    func on(_ member: SSHPeer, _ args: [String], env extra: String = "") throws -> (status: Int32, output: String) {
        try member.run(line(member, args, env: extra))
    }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    func count(_ sub: String) -> Int {
        let dir = otherStore + "/" + sub
        if sub == "blobs/sha256" {
            return ((try? FileIO.listDirectory(dir)) ?? []).reduce(0) { n, p in
                n + (((try? FileIO.listDirectory(dir + "/" + p)) ?? []).filter { !$0.contains(".") }.count)
            }
        }
        return ((try? FileIO.listDirectory(dir)) ?? []).count
    }
}

@Suite(.timeLimit(.minutes(8)), .serialized,
       .enabled(if: GroupFixture.shared != nil, "needs the group, the other users and the test sshd of scripts/setup-host.sh"))
struct GroupStoreTests {
    @Test func eightPullsOfTwoUsersAtOnceStoreEachBlobAndLayerOnceAndBothVerify() throws {
        let g = try GroupRepos()
        let peer = g.fixture.peer
        // Four pulls of the peer in one ssh session, four of this user, all at once.
        _ = try g.on(peer, ["version"])
        let pulls = (0..<4).map { _ in "(" + g.line(peer, ["-q", "pull", "test/many:t00"]) + ") &" }.joined(separator: " ")
        let remote = try peer.start(pulls + " fails=0; for j in $(jobs -p); do wait $j || fails=$((fails+1)); done; exit $fails")
        let mine = (0..<4).map { _ in startUdocker(["-q", "pull", "test/many:t00"], env: g.env) }
        let statuses = mine.map(waitForExit)
        remote.waitUntilExit()
        #expect(statuses == [0, 0, 0, 0])
        #expect(remote.terminationStatus == 0)
        // One manifest, one config, one layer blob, one unpacked layer.
        #expect(g.count("blobs/sha256") == 3)
        #expect(g.count("layers/sha256") == 1)
        let v1 = g.run(["store", "verify"])
        #expect(v1.status == 0 && v1.stdout.contains("healthy"), "\(v1.stdout)\(v1.stderr)")
        let v2 = try g.on(peer, ["store", "verify"])
        #expect(v2.status == 0 && v2.output.contains("healthy"), "\(v2.output)")
        let stats = g.run(["store", "stats"])
        #expect(stats.stdout.contains("group: \(g.fixture.group)") && stats.stdout.contains("of 2 user(s)")
                && stats.stdout.contains(peer.user), "\(stats.stdout)")
        // Objects are readable by the group, directories group-writable and setgid, whatever the umask.
        var st = stat()
        #expect(lstat(g.otherStore + "/layers/sha256", &st) == 0 && st.st_mode & 0o7070 == 0o2070)
    }

    @Test func tenLinkContainersOfAnotherMembersImageCostOnePrivateCopy() throws {
        let g = try GroupRepos()
        let peer = g.fixture.peer
        try #require(g.run(["pull", "test/many:t00"]).status == 0)
        let pulled = try g.on(peer, ["pull", "test/many:t00"])
        try #require(pulled.status == 0, "\(pulled.output)")
        var made = [String]()
        for i in 0..<10 {
            let c = try g.on(peer, ["create", "--materialize=link", "--name=c\(i)", "test/many:t00"])
            try #require(c.status == 0, "\(c.output)")
            made.append(c.output)
        }
        // The peer pulled nothing new: the layer is the test user's, the peer has one private copy.
        #expect(g.count("layers/sha256") == 1)
        let copies = try peer.run("ls \(g.otherStore)/private/$(id -u)")
        #expect(copies.output.split(separator: "\n").count == 1, "\(copies.output)")
        // Disk: du counts each inode once: the ten containers and the copy are one tree plus directories.
        let layerBytes = try peer.run("du -s --block-size=1 \(g.otherStore)/layers | cut -f1")
        let peerBytes = try peer.run("du -s --block-size=1 \(g.otherStore)/private/$(id -u) $HOME/group-tests/\(g.name)/repo/containers | awk '{s+=$1} END {print s}'")
        let image = try #require(Int64(layerBytes.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        let peers = try #require(Int64(peerBytes.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(peers < image * 2, "peer's containers and copy: \(peers) bytes, the image: \(image) bytes")
        let run = try g.on(peer, ["run", "c3", "/bin/sh", "-c", "echo ran"])
        #expect(run.status == 0 && run.output.contains("ran"), "\(run.output)")
        let v = try g.on(peer, ["store", "verify"])
        #expect(v.status == 0 && v.output.contains("healthy"), "\(v.output)")
    }

    /// The image of the Fakechroot modes' runs: host programs with their loader and libraries (busybox is
    /// static, and libfakechroot works only in dynamically linked programs), and a file to write into.
    static let hostSpec = HostImageSpec(name: "groupimg:fc", files: ["/etc/linked.txt": "original\n"])

    /// Every member runs as emulated root (as far as the mode emulates it) and writes in place into a
    /// file its container links, in every execution mode: no store file and no other member's
    /// container changes; without subordinate ids the change is reported.
    @Test(arguments: ["P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3"])
    func runsThatWriteLinkedFilesChangeNoStoreFileAndNoOtherMembersContainer(mode: String) throws {
        guard ExecutionModeSupport.unavailableReason(mode) == nil else { return }
        let g = try GroupRepos()
        // The image comes to every member the same way: from the registry, or for F modes loaded from
        // a tar in the group's directory (which the other members can read).
        let fakechroot = mode.hasPrefix("F")
        let image = fakechroot ? Self.hostSpec.name : "test/busybox:oci"
        let target = fakechroot ? "/etc/linked.txt" : "/bin/busybox"
        var fetch = ["pull", image]
        if fakechroot {
            let tar = g.otherStore + ".image.tar"
            try FileManager.default.copyItem(atPath: try HostImage.shared(Self.hostSpec), toPath: tar)
            try #require(chmod(tar, 0o644) == 0)
            fetch = ["load", "-i", tar]
        }
        defer { if fakechroot { _ = unlink(g.otherStore + ".image.tar") } }
        let fetched = g.run(fetch)
        try #require(fetched.status == 0, "\(fetched.stdout)\(fetched.stderr)")
        let mine = g.run(["create", "--materialize=link", "--name=mine", image])
        try #require(mine.status == 0, "\(mine.stderr)")
        let file = g.repo + "/containers/" + mine.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/ROOT" + target
        let before = try SHA256Hasher.hash(fileAt: file).0
        let write = "chmod u+w \(target); echo X >> \(target); echo done"
        for member in [g.fixture.peer, g.fixture.nosub] {
            let f = try g.on(member, fetch)
            try #require(f.status == 0, "\(member.user): \(f.output)")
            let c = try g.on(member, ["create", "--materialize=link", "--name=w", image])
            try #require(c.status == 0, "\(c.output)")
            if mode != "P1" {
                let s = try g.on(member, ["setup", "--execmode=" + mode, "w"])
                try #require(s.status == 0, "\(member.user) setup \(mode): \(s.output)")
            }
            let r = try g.on(member, ["run", "--user=root", "w", "/bin/sh", "-c", write])
            #expect(r.output.contains("done"), "\(member.user) \(mode): \(r.output)")
            // The peer's copy is sealed (its subordinate ids own it): the write fails. The member without
            // subordinate ids owns its copy, so the write (or at least the chmod) lands there, and is reported.
            if member.user == g.fixture.nosub.user {
                #expect(r.output.contains("this run changed") && r.output.contains("udocker store verify --repair"),
                        "\(mode): \(r.output)")
            } else {
                #expect(!r.output.contains("this run changed"), "\(member.user) \(mode): \(r.output)")
            }
            #expect(try SHA256Hasher.hash(fileAt: file).0 == before, "\(member.user) in \(mode) changed the test user's container")
        }
        let v = g.run(["store", "verify"])
        #expect(v.stdout.contains("checked"), "\(v.stdout)\(v.stderr)")
        // The shared tree is the test user's and sealed or untouched; the members' changes stayed in
        // their own private copies (reported there, for the member without subordinate ids).
        #expect(!v.stdout.contains("of unpacked layer sha256") || v.stdout.contains("private copy"), "\(v.stdout)")
        let run = g.run(["run", "mine", "/bin/sh", "-c", "cat " + target + " >/dev/null && echo alive"])
        #expect(run.status == 0 && run.stdout.contains("alive"), "\(run.stdout)\(run.stderr)")
    }

    @Test func gcByOneMemberKeepsTheOthersImagesAndContainersAndDropsGoneRepositories() throws {
        let g = try GroupRepos()
        let peer = g.fixture.peer
        try #require(try g.on(peer, ["pull", "test/busybox:oci"]).status == 0)
        try #require(try g.on(peer, ["create", "--name=kept", "test/busybox:oci"]).status == 0)
        try #require(g.run(["pull", "test/busybox:oci"]).status == 0)
        try #require(g.run(["pull", "test/many:t00"]).status == 0)
        try #require(g.run(["rmi", "test/many:t00"]).status == 0)
        // A repository of this user that is then deleted: GC drops it and what it held.
        let gone = g.tmp + "/gone"
        try #require(g.run(["mkrepo", "--store=" + g.store, "--group=" + g.fixture.group, gone]).status == 0)
        try #require(g.run(["--repo=" + gone, "pull", "test/busybox:zstd"]).status == 0)
        try FileIO.removeTree(gone)

        let gc = g.run(["gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(gc.stdout.contains("dropped repository \(gone)"), "\(gc.stdout)")
        #expect(gc.stdout.contains("removed") && gc.stdout.contains("bytes"), "\(gc.stdout)")
        let images = try g.on(peer, ["images"])
        #expect(images.output.contains("test/busybox:oci"), "\(images.output)")
        let run = try g.on(peer, ["run", "kept", "/bin/sh", "-c", "echo alive"])
        #expect(run.status == 0 && run.output.contains("alive"), "\(run.output)")
        let v = try g.on(peer, ["store", "verify"])
        #expect(v.status == 0 && v.output.contains("healthy"), "\(v.output)")
        // The peer's GC does the same from its side and finds nothing more of its own to remove.
        let again = try g.on(peer, ["gc"])
        #expect(again.status == 0 && again.output.contains("removed 0 blob(s)"), "\(again.output)")
    }

    @Test func pullKilledWhileAnotherMemberPullsLeavesAStoreThatVerifiesAndBothFinish() throws {
        let g = try GroupRepos()
        let peer = g.fixture.peer
        _ = try g.on(peer, ["version"])
        let remote = try peer.start(g.line(peer, ["-q", "pull", "test/many:t00"]))
        let pid = startUdocker(["-q", "pull", "test/many:t00"], env: g.env)
        usleep(60_000)
        kill(pid, SIGKILL)
        _ = waitForExit(pid)
        remote.waitUntilExit()
        #expect(remote.terminationStatus == 0)
        let v = g.run(["store", "verify"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")
        #expect(g.run(["pull", "test/many:t00"]).status == 0)
        let p = try g.on(peer, ["pull", "test/many:t00"])
        #expect(p.status == 0, "\(p.output)")
        #expect(g.count("blobs/sha256") == 3 && g.count("layers/sha256") == 1)
        let v2 = try g.on(peer, ["store", "verify"])
        #expect(v2.status == 0 && v2.output.contains("healthy"), "\(v2.output)")
    }

    @Test func wrongPermissionsSayWhatIsWrongAndHowToFixIt() throws {
        let g = try GroupRepos()
        let peer = g.fixture.peer
        try #require(try g.on(peer, ["images"]).status == 0)
        // The creator's refs directory loses the group's write access (a chmod with the wrong umask, say).
        try #require(chmod(g.otherStore + "/refs", 0o2755) == 0)
        let refused = try g.on(peer, ["pull", "test/busybox:oci"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("\(g.otherStore)/refs") && refused.output.contains("cannot read, write and enter it")
                && refused.output.contains("--group=\(g.fixture.group)"), "\(refused.output)")
        // The owner repairs it as the message says.
        let fix = g.run(["mkrepo", "--store=" + g.store, "--group=" + g.fixture.group, g.repo])
        #expect(fix.status == 0, "\(fix.stderr)")
        let pulled = try g.on(peer, ["pull", "test/busybox:oci"])
        #expect(pulled.status == 0, "\(pulled.output)")
        // A group that does not exist, or one this user is not in, is refused before anything is made.
        let none = g.run(["mkrepo", "--store=" + g.tmp + "/s2", "--group=no-such-group-here", g.tmp + "/r2"])
        #expect(none.status != 0 && none.stderr.contains("there is no group 'no-such-group-here'"), "\(none.stderr)")
        #expect(!FileIO.exists(g.tmp + "/s2/store.json"))
        let notMember = g.run(["mkrepo", "--store=" + g.tmp + "/s3", "--group=root", g.tmp + "/r3"])
        #expect(notMember.status != 0 && notMember.stderr.contains("not a member of group root"), "\(notMember.stderr)")
    }

    /// The same store through FUSE (a network filesystem to udocker) and directly: two "hosts" with
    /// their own index; what one adds the other finds; the store verifies from both.
    @Test(.enabled(if: GroupFixture.shared?.fuse != nil, "needs the FUSE mount of scripts/setup-host.sh"))
    func throughFUSEAndDirectlyEachHostLearnsWhatTheOtherAdded() throws {
        let g = try GroupRepos(throughFUSE: true)
        let peer = g.fixture.peer
        let stats = g.run(["store", "stats"])
        #expect(stats.stdout.contains("local cache: store is on fuse"), "\(stats.stdout)")
        try #require(g.run(["pull", "test/many:t00"]).status == 0)
        try #require(g.run(["create", "--name=here", "test/many:t00"]).status == 0)
        // The peer, directly on the disk: the blobs are there, so its pull downloads nothing new.
        let p = try g.on(peer, ["pull", "test/many:t00"])
        #expect(p.status == 0, "\(p.output)")
        #expect(g.count("blobs/sha256") == 3 && g.count("layers/sha256") == 1)
        let c = try g.on(peer, ["create", "--name=there", "test/many:t00"])
        #expect(c.status == 0, "\(c.output)")
        // Back through FUSE: the zstd blob of the same layer, which the peer adds to the layer's
        // layer.json, is found by this host, whose index does not know it.
        try #require(try g.on(peer, ["pull", "test/busybox:zstd"]).status == 0)
        let blobs = g.count("blobs/sha256")
        let z = g.run(["pull", "test/busybox:zstd"])
        #expect(z.status == 0, "\(z.stderr)")
        #expect(g.count("blobs/sha256") == blobs && g.count("layers/sha256") == 1)
        #expect(g.run(["images"]).stdout.contains("test/busybox:zstd"))
        let v = g.run(["store", "verify"])
        #expect(v.status == 0 && v.stdout.contains("healthy"), "\(v.stdout)\(v.stderr)")
        let r = g.run(["run", "here", "/bin/sh", "-c", "echo fuse"])
        #expect(r.status == 0 && r.stdout.contains("fuse"), "\(r.stderr)")
    }

    /// Through FUSE (a network filesystem, whose server decides ownership), the member who unpacked a
    /// layer writes in place into a file its container links (the repository on the same mount, so it
    /// links): whether or not the store could seal it, the other member's container (its private copy)
    /// does not change, and a change of the store's file is reported.
    @Test(.enabled(if: GroupFixture.shared?.fuse != nil && ExecutionModeSupport.unavailableReason("P1") == nil,
                   "needs the FUSE mount of scripts/setup-host.sh and proot"))
    func throughFUSEAWriteIntoALinkedFileReachesNoOtherMembersContainer() throws {
        let g = try GroupRepos(throughFUSE: true)
        let peer = g.fixture.peer
        let repo = g.store + ".repo"
        defer { _ = try? FileIO.removeTree(g.otherStore + ".repo") }
        let here = ["UDOCKER_DIR": repo]
        try #require(g.run(["mkrepo", "--store=" + g.store, "--group=" + g.fixture.group, repo]).status == 0)
        try #require(g.run(["pull", "test/busybox:oci"], here).status == 0)
        let mine = g.run(["create", "--materialize=link", "--name=mine", "test/busybox:oci"], here)
        try #require(mine.status == 0 && !mine.stderr.contains("copied instead of linked"), "\(mine.stderr)")
        let storeFile = try #require(try FileIO.listDirectory(g.otherStore + "/layers/sha256").first
            .map { g.otherStore + "/layers/sha256/" + $0 + "/root/bin/busybox" })
        let stored = try SHA256Hasher.hash(fileAt: storeFile).0
        // A copy-mode container on the mount has the image's mtimes too (files and directories).
        let copy = g.run(["create", "--materialize=copy", "--name=copied", "test/busybox:oci"], here)
        try #require(copy.status == 0, "\(copy.stderr)")
        let copyRoot = g.run(["inspect", "-p", "copied"], here).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let layerJSON = FileIO.parent(of: FileIO.parent(of: FileIO.parent(of: storeFile))) + "/layer.json"
        let manifest = try JSONDecoder().decode(LayerManifest.self, from: Data(try FileIO.readFile(layerJSON)))
        for p in ["bin/busybox", "bin"] {
            var st = stat()
            let e = try #require(manifest.entries.first { $0.path == p })
            try #require(lstat(copyRoot + "/" + p, &st) == 0)
            #expect(Int64(st.st_mtim.tv_sec) == e.mtime, "/\(p): \(st.st_mtim.tv_sec) in the copy, \(e.mtime) in the image")
        }
        try #require(try g.on(peer, ["pull", "test/busybox:oci"]).status == 0)
        let theirs = try g.on(peer, ["create", "--materialize=link", "--name=theirs", "test/busybox:oci"])
        try #require(theirs.status == 0, "\(theirs.output)")
        let hash = "sha256sum $HOME/group-tests/\(g.name)/repo/containers/*/ROOT/bin/busybox | cut -d' ' -f1"
        let before = try peer.run(hash).output
        let w = g.run(["run", "--user=root", "mine", "/bin/sh", "-c", "chmod u+w /bin/busybox; echo X >> /bin/busybox; echo done"], here)
        #expect(w.stdout.contains("done"), "\(w.stdout)\(w.stderr)")
        let changed = try SHA256Hasher.hash(fileAt: storeFile).0 != stored
        #expect(!changed || w.stderr.contains("this run changed"), "an unreported change of the store's file: \(w.stderr)")
        #expect(try peer.run(hash).output == before, "the test user's write reached the peer's container")
        let r = try g.on(peer, ["run", "theirs", "/bin/busybox", "true"])
        #expect(r.status == 0, "\(r.output)")
        if changed {
            let repair = g.run(["store", "verify", "--repair"], here)
            #expect(try SHA256Hasher.hash(fileAt: storeFile).0 == stored, "\(repair.stdout)\(repair.stderr)")
        }
        let v = try g.on(peer, ["store", "verify"])
        #expect(v.status == 0 && v.output.contains("healthy"), "\(v.output)")
    }

    @Test func withoutLocksGCIsRefusedAndPullsGoOn() throws {
        let g = try GroupRepos()
        let noLocks = ["UDOCKER_FAILPOINT": "no-locks"]
        let pull = g.run(["pull", "test/busybox:oci"], noLocks)
        #expect(pull.status == 0, "\(pull.stderr)")
        let gc = g.run(["gc"], noLocks)
        #expect(gc.status != 0 && gc.stderr.contains("does not support file locks") && gc.stderr.contains("garbage collection is refused"),
                "\(gc.stderr)")
        let rmi = g.run(["rmi", "test/busybox:oci"], noLocks)
        #expect(rmi.status == 0, "\(rmi.stderr)")
        // Nothing was deleted without locks; a GC where locks work removes it.
        #expect(g.count("blobs/sha256") == 3)
        let real = g.run(["gc"])
        #expect(real.status == 0 && g.count("blobs/sha256") == 0, "\(real.stdout)\(real.stderr)")
    }
}
