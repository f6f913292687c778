// Containers travelling as image + delta between two repositories of real images and containers
// (link, auto, copy, one changed by a run): ContainerDelta on A, the image and delta blob moved to B,
// ContainerArrival on B; same tree, unchanged source, a second prepare that reads nothing, names.
import Testing
import CAS
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime

/// Two repositories: A with the host image and containers, B with the same image loaded from A's save.
final class TravelRepos {
    let tmp: String
    let a: String
    let b: String
    static let image = "hostimg:delta"
    static let spec = HostImageSpec(name: image, cmd: ["/bin/sh", "-c", "echo ran"],
                                    files: ["/etc/app.conf": "a=1\n", "/etc/gone.txt": "bye\n", "/etc/mode.txt": "m\n",
                                            "/etc/keep.txt": "same\n"],
                                    scripts: ["/usr/local/bin/hello": "#!/bin/sh\necho hello\n"])

    init() throws {
        tmp = makeTempDirectory("delta-test")
        a = tmp + "/A"
        b = tmp + "/B"
        let l = udocker(a, ["load", "-i", try HostImage.shared(Self.spec)])
        try #require(l.status == 0, "load: \(l.stderr)")
        try Self.carryImage(Self.image, from: try Repository.create(at: a).repository, to: try Repository.create(at: b).repository)
    }

    /// Copies an image as sync does: its blobs through the target store's ingest, its layers
    /// unpacked there, then its record (same manifest digest as on the source).
    static func carryImage(_ name: String, from: Repository, to: Repository) throws {
        let sa = try from.openStore(), sb = try to.openStore()
        let img = try #require(try ImageStore(repository: from, store: sa).image(named: name))
        let r = img.record
        for d in [r.configDigest, r.manifestDigest] + r.layers.map(\.digest) {
            _ = try sb.ingest(fileAt: sa.blobPath(d), expected: d)
        }
        for l in r.layers { _ = try sb.unpackLayer(blob: l.digest) }
        try ImageStore(repository: to, store: sb).write(r, as: try ImageName(parsing: name))
    }

    deinit { try? FileIO.removeTree(tmp) }

    func udocker(_ repo: String, _ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: ["UDOCKER_DIR": repo])
    }

    func repository(_ dir: String) throws -> Repository { try Repository.create(at: dir).repository }

    /// Creates container `name` in repository `repo`; returns its id.
    @discardableResult
    func create(_ repo: String, _ name: String, materialize: String) throws -> String {
        let c = udocker(repo, ["create", "--materialize=\(materialize)", "--name=\(name)", Self.image])
        try #require(c.status == 0, "create: \(c.stderr)")
        return c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func root(_ repo: String, _ id: String) -> String { repo + "/containers/" + id + "/ROOT" }

    /// What a run of a user's job does to a container: files added, appended to, deleted, chmodded,
    /// a symlink, a hardlink, an empty directory. Through `run` (P1) when PRoot is here, else directly.
    static let changes = """
        echo new > /etc/added.txt && echo more >> /etc/app.conf && rm /etc/gone.txt /usr/local/bin/hello && \
        chmod 0600 /etc/mode.txt && ln -s /etc/app.conf /etc/app.link && ln /etc/added.txt /etc/added.hard && \
        mkdir -p /var/emptydir /home/tester/work && echo data > /home/tester/work/out.txt
        """

    func change(_ repo: String, _ name: String) throws {
        if ExecutionModeSupport.available(["P1"]) {
            let r = udocker(repo, ["run", name, "/bin/sh", "-c", Self.changes])
            try #require(r.status == 0, "run: \(r.stdout)\(r.stderr)")
        } else {
            let s = spawnAndCollect(["/bin/sh", "-c", Self.changes.replacingOccurrences(of: " /", with: " " + root(repo, name) + "/")],
                                    environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
            try #require(s.status == 0, "changes: \(s.stderr)")
        }
    }

    /// Moves a prepared container's delta blob from A's store into B's, through B's ingest.
    func carryDelta(_ c: SyncContainer) throws {
        let sa = try repository(a).openStore(), sb = try repository(b).openStore()
        _ = try sb.ingest(fileAt: sa.blobPath(c.delta.digest), expected: c.delta.digest)
    }

    func snapshot(_ root: String) throws -> TreeSnapshot {
        try TreeSnapshot(root, inodes: false, rootEntry: true, wholeSeconds: true)
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ContainerDeltaTests {
    @Test func linkAutoCopyAndChangedContainersArriveWithTheSameTree() throws {
        let f = try TravelRepos()
        var ids: [String: String] = [:]
        for m in ["link", "auto", "copy"] { ids[m] = try f.create(f.a, "c-\(m)", materialize: m) }
        ids["changed"] = try f.create(f.a, "changed", materialize: "auto")
        try f.change(f.a, "changed")
        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        for (label, id) in ids.sorted(by: { $0.key < $1.key }) {
            let before = try TreeSnapshot(f.root(f.a, id))
            let c = try ContainerDelta.prepare(repository: repoA, container: id)
            #expect(c.id == id)
            #expect(c.execmode == "P1")
            #expect(c.delta.mediaType == ContainerDelta.mediaType)
            #expect(c.materialize == (label == "changed" ? "auto" : label))
            #expect(c.names == [label == "changed" ? "changed" : "c-\(label)"])
            // Never changes the source.
            #expect(try TreeSnapshot(f.root(f.a, id)).differences(from: before) == [])
            try f.carryDelta(c)
            #expect(try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) == .created)
            let diff = try f.snapshot(f.root(f.b, id)).differences(from: try f.snapshot(f.root(f.a, id)))
            #expect(diff == [], "\(label): \(diff.prefix(10))")
            #expect(try TreeSnapshot.hardlinkGroups(f.root(f.b, id)) == TreeSnapshot.hardlinkGroups(f.root(f.a, id)))
            // Metadata as on A.
            for file in ["container.json", "imagerepo.name", "execmode"] {
                #expect(try FileIO.readFile(f.a + "/containers/\(id)/\(file)") == FileIO.readFile(f.b + "/containers/\(id)/\(file)"))
            }
            #expect(ContainerStore.names(of: id, containersdir: f.b + "/containers") == c.names)
            // The same container again: nothing to do.
            #expect(try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) == .unchanged)
        }
        // An unchanged container's delta is empty of files; the changed one holds what the run did.
        let cached = try ContainerDelta.prepareReporting(repository: repoA, container: "changed")
        #expect(!cached.report.deltaWritten)
        DeltaCache.remove(repoA, id: ids["changed"] ?? "")
        let changed = try ContainerDelta.prepareReporting(repository: repoA, container: "changed")
        #expect(changed.report.entries > 0)
        #expect(changed.container.delta == cached.container.delta, "the same tree gives the same delta bytes")
        // A link-mode container compares without reading: its files are the store's inodes. Without
        // its stat cache, the delta is made again and nothing is hashed.
        DeltaCache.remove(repoA, id: ids["link"] ?? "")
        let unchanged = try ContainerDelta.prepareReporting(repository: repoA, container: "c-link")
        #expect(unchanged.report.storeInodes > 0)
        #expect(unchanged.report.filesHashed == 0)
        #expect(unchanged.report.deltaWritten)
        // Hardlink kept, link mode files linked into B's store.
        let rb = f.root(f.b, ids["changed"] ?? "")
        var s1 = stat(), s2 = stat()
        #expect(lstat(rb + "/etc/added.txt", &s1) == 0 && lstat(rb + "/etc/added.hard", &s2) == 0 && s1.st_ino == s2.st_ino)
        #expect(!FileIO.exists(rb + "/etc/gone.txt"))
        #expect(FileIO.isDirectory(rb + "/var/emptydir"))
        let storeB = try repoB.openStore()
        let bash = f.root(f.b, ids["link"] ?? "") + "/usr/bin/bash"
        #expect(lstat(bash, &s1) == 0 && s1.st_nlink > 1)
        #expect(lstat(storeB.layout.root, &s2) == 0 && s1.st_dev == s2.st_dev)
        // It runs on B.
        if ExecutionModeSupport.available(["P1"]) {
            let r = f.udocker(f.b, ["run", "changed", "/bin/cat", "/etc/app.conf", "/home/tester/work/out.txt"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "a=1\nmore\ndata\n")
        }
    }

    @Test func aSecondPrepareOfAnUnchangedContainerReadsNothingAndGivesTheSameDigest() throws {
        let f = try TravelRepos()
        try f.create(f.a, "c", materialize: "copy")
        try f.change(f.a, "c")
        // Files changed in the second they are hashed are not trusted to the cache (racy-clean).
        sleep(1)
        let repoA = try f.repository(f.a)
        let first = try ContainerDelta.prepareReporting(repository: repoA, container: "c")
        #expect(first.report.deltaWritten)
        #expect(first.report.filesHashed > 0)
        let second = try ContainerDelta.prepareReporting(repository: repoA, container: "c")
        #expect(second.container.delta == first.container.delta)
        #expect(second.report.filesHashed == 0)
        #expect(second.report.deltaWritten == false)
        // Without the cache, the delta is made again from the files: the very same bytes.
        DeltaCache.remove(repoA, id: second.container.id)
        let third = try ContainerDelta.prepareReporting(repository: repoA, container: "c")
        #expect(third.report.deltaWritten)
        #expect(third.container.delta == first.container.delta)
        // A file the user changes is seen (size and mtime moved), and only that file is hashed again.
        let root = f.root(f.a, second.container.id)
        let fd = open(root + "/etc/keep.txt", O_WRONLY | O_APPEND)
        #expect(fd >= 0)
        _ = write(fd, "x", 1)
        _ = close(fd)
        let fourth = try ContainerDelta.prepareReporting(repository: repoA, container: "c")
        #expect(fourth.container.delta.digest != first.container.delta.digest)
        #expect(fourth.report.filesHashed == 0, "a file whose size moved needs no hash to be in the delta")
        // Its arrival replaces an older copy of the same id on B.
        let repoB = try f.repository(f.b)
        try f.carryDelta(first.container)
        #expect(try ContainerArrival.land(repository: repoB, container: first.container, options: SyncArrivalOptions()) == .created)
        try f.carryDelta(fourth.container)
        #expect(try ContainerArrival.land(repository: repoB, container: fourth.container, options: SyncArrivalOptions()) == .updated)
        #expect(try String(decoding: FileIO.readFile(f.root(f.b, fourth.container.id) + "/etc/keep.txt"), as: UTF8.self) == "same\nx")
    }

    /// An update of a copy-mode container takes over the old tree's copies of the files neither delta
    /// touches (hardlinked into the new tree, the old one removed): same inode, one link, same tree as
    /// the source; a file the target's copy no longer has as the image had it is copied again.
    @Test func anUpdateTakesOverTheOldCopiesOfFilesNeitherDeltaTouches() throws {
        let f = try TravelRepos()
        try f.create(f.a, "c", materialize: "copy")
        try f.change(f.a, "c")
        sleep(1)
        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        let first = try ContainerDelta.prepare(repository: repoA, container: "c")
        try f.carryDelta(first)
        #expect(try ContainerArrival.land(repository: repoB, container: first, options: SyncArrivalOptions()) == .created)
        let rootB = f.root(f.b, first.id)
        func inode(_ p: String) -> (ino: UInt64, links: UInt64) {
            var st = stat()
            return lstat(rootB + p, &st) == 0 ? (UInt64(st.st_ino), UInt64(st.st_nlink)) : (0, 0)
        }
        let untouched = inode("/usr/bin/true"), added = inode("/etc/added.txt")
        #expect(untouched.ino != 0 && untouched.links == 1)
        // On B, a file of the image is changed with its size and mtime kept (its ctime moves, which the
        // stat cache sees): it is not what the image has, so the update must not take it over.
        let cat = rootB + "/usr/bin/cat"
        var st = stat()
        try #require(lstat(cat, &st) == 0)
        let mtime = st.st_mtim
        let fd = open(cat, O_WRONLY)
        try #require(fd >= 0)
        _ = pwrite(fd, "X", 1, 0)
        _ = close(fd)
        var times = [mtime, mtime]
        _ = utimensat(AT_FDCWD, cat, &times, AT_SYMLINK_NOFOLLOW)

        let keep = open(f.root(f.a, first.id) + "/etc/keep.txt", O_WRONLY | O_APPEND)
        try #require(keep >= 0)
        _ = write(keep, "x", 1)
        _ = close(keep)
        let second = try ContainerDelta.prepare(repository: repoA, container: "c")
        try f.carryDelta(second)
        #expect(try ContainerArrival.land(repository: repoB, container: second, options: SyncArrivalOptions()) == .updated)
        let after = inode("/usr/bin/true")
        #expect(after.ino == untouched.ino && after.links == 1, "taken over, and the old tree's link is gone")
        #expect(inode("/etc/added.txt").ino != added.ino, "a file of a delta is made again")
        #expect(try f.snapshot(rootB) == f.snapshot(f.root(f.a, first.id)))
        #expect(try SHA256Hasher.hash(fileAt: cat).0 == SHA256Hasher.hash(fileAt: f.root(f.a, first.id) + "/usr/bin/cat").0)
    }

    @Test func aNameTakenOnTheTargetIsRefusedAndForceReplacesIt() throws {
        let f = try TravelRepos()
        try f.create(f.a, "job", materialize: "auto")
        let other = try f.create(f.b, "job", materialize: "copy")
        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        let c = try ContainerDelta.prepare(repository: repoA, container: "job")
        try f.carryDelta(c)
        let before = try TreeSnapshot(f.b + "/containers")
        #expect(throws: RuntimeError.self) { try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) }
        do { _ = try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) } catch {
            #expect("\(error)".contains("already taken by container \(other)"))
        }
        #expect(try TreeSnapshot(f.b + "/containers").differences(from: before) == [])
        #expect(try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions(force: true)) == .created)
        #expect(!FileIO.exists(f.b + "/containers/" + other))
        // rm releases what prepare kept: the delta ref and the stat cache.
        let storeA = try repoA.openStore()
        #expect(try storeA.ref(holder: "repo/\(try ContainerStore(repository: repoA, store: storeA).repositoryID)/container/\(c.id)/delta") != nil)
        #expect(f.udocker(f.a, ["rm", "job"]).status == 0)
        #expect(try storeA.ref(holder: "repo/\(try ContainerStore(repository: repoA, store: storeA).repositoryID)/container/\(c.id)/delta") == nil)
        #expect(!FileIO.exists(DeltaCache.path(repoA, id: c.id)))
        #expect(ContainerStore.resolve("job", containersdir: f.b + "/containers") == c.id)
        // A missing image or delta is a clear error.
        var noImage = c
        noImage.imageManifest = try Digest(parsing: "sha256:" + String(repeating: "0", count: 64))
        #expect(throws: RuntimeError.self) { try ContainerArrival.land(repository: repoB, container: noImage, options: SyncArrivalOptions()) }
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "P1"]))) func anF3ContainerArrivesInP1WithItsOriginalFiles() throws {
        let f = try TravelRepos()
        let id = try f.create(f.a, "fc", materialize: "auto")
        let original = try f.snapshot(f.root(f.a, id))
        let s = f.udocker(f.a, ["setup", "--execmode=F3", "fc"])
        try #require(s.status == 0, "setup: \(s.stdout)\(s.stderr)")
        let r = f.udocker(f.a, ["run", "fc", "/bin/echo", "ran in F3"])
        try #require(r.status == 0 && r.stdout == "ran in F3\n", "F3 run: \(r.stdout)\(r.stderr)")
        let setUp = try TreeSnapshot(f.root(f.a, id))
        sleep(1)   // racy-clean: files patched in this second are not trusted to the stat cache

        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        let c = try ContainerDelta.prepareReporting(repository: repoA, container: "fc")
        #expect(c.container.execmode == "P1")
        #expect(try TreeSnapshot(f.root(f.a, id)).differences(from: setUp) == [], "the source is never changed")
        #expect(try String(decoding: FileIO.readFile(f.a + "/containers/\(id)/execmode"), as: UTF8.self).hasPrefix("F3"))
        try f.carryDelta(c.container)
        #expect(try ContainerArrival.land(repository: repoB, container: c.container, options: SyncArrivalOptions()) == .created)
        let arrived = try f.snapshot(f.root(f.b, id))
        // The F3 run added the user to passwd and group: that change travels like any other.
        let runMade = ["/etc: ", "/etc/passwd: ", "/etc/group: "]
        let diff = arrived.differences(from: original).filter { d in !runMade.contains { d.hasPrefix($0) } }
        #expect(diff == [], "the files it had before setup")
        for file in ["/etc/passwd", "/etc/group"] {
            #expect(try FileIO.readFile(f.root(f.b, id) + file) == FileIO.readFile(f.root(f.a, id) + file))
        }
        #expect(try String(decoding: FileIO.readFile(f.b + "/containers/\(id)/execmode"), as: UTF8.self) == "P1")
        #expect(!FileIO.exists(f.b + "/containers/\(id)/" + ElfPatcher.recordFile))
        // No path of the source host left: nothing in ROOT names A's directory.
        let grep = spawnAndCollect(["/bin/grep", "-rlF", f.a, f.root(f.b, id)], environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
        #expect(grep.stdout == "", "files naming the source repository: \(grep.stdout)")
        let run = f.udocker(f.b, ["run", "fc", "/bin/echo", "ran in P1"])
        #expect(run.status == 0 && run.stdout == "ran in P1\n", "\(run.stdout)\(run.stderr)")
        // Unchanged since: the second prepare hashes nothing and gives the same delta.
        let again = try ContainerDelta.prepareReporting(repository: repoA, container: "fc")
        #expect(again.container.delta == c.container.delta)
        #expect(again.report.filesHashed == 0)
        // --execmode sets a mode up on arrival (patched for the target's paths).
        let rm = f.udocker(f.b, ["rm", "fc"])
        try #require(rm.status == 0, "rm on B: \(rm.stderr)")
        // rm released the delta the arrival recorded for the container: a sync would send it again.
        #expect(!FileIO.exists(try repoB.openStore().blobPath(c.container.delta.digest)))
        try f.carryDelta(c.container)
        #expect(try ContainerArrival.land(repository: repoB, container: c.container, options: SyncArrivalOptions(execmode: "F3")) == .created)
        #expect(try String(decoding: FileIO.readFile(f.b + "/containers/\(id)/execmode"), as: UTF8.self).hasPrefix("F3"))
        let f3 = f.udocker(f.b, ["run", "fc", "/bin/echo", "ran in F3 on B"])
        #expect(f3.status == 0 && f3.stdout == "ran in F3 on B\n", "\(f3.stdout)\(f3.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["R1", "P1"]))) func anR1ContainerArrivesInP1WithoutRuncFiles() throws {
        let f = try TravelRepos()
        let id = try f.create(f.a, "rc", materialize: "copy")
        let original = try f.snapshot(f.root(f.a, id))
        let s = f.udocker(f.a, ["setup", "--execmode=R1", "rc"])
        try #require(s.status == 0, "setup: \(s.stdout)\(s.stderr)")
        let r = f.udocker(f.a, ["run", "rc", "/bin/echo", "ran in R1"])
        try #require(r.status == 0, "R1 run: \(r.stdout)\(r.stderr)")
        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        let c = try ContainerDelta.prepare(repository: repoA, container: "rc")
        #expect(c.execmode == "P1")
        try f.carryDelta(c)
        #expect(try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) == .created)
        let diff = try f.snapshot(f.root(f.b, id)).differences(from: original)
        #expect(diff == [], "\(diff)")
        #expect(!FileIO.exists(f.root(f.b, id) + "/.udocker"))
        let run = f.udocker(f.b, ["run", "rc", "/bin/echo", "ran in P1"])
        #expect(run.status == 0 && run.stdout == "ran in P1\n", "\(run.stdout)\(run.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "P1"]))) func anF3ContainerWhoseOriginalsAreGoneIsSetBackWithPatchelf() throws {
        let f = try TravelRepos()
        let id = try f.create(f.a, "lost", materialize: "copy")
        let s = f.udocker(f.a, ["setup", "--execmode=F3", "lost"])
        try #require(s.status == 0, "setup: \(s.stdout)\(s.stderr)")
        // An F3 container copied without its kept originals (as an older clone was).
        try FileIO.removeTree(f.a + "/containers/\(id)/" + ElfPatcher.asideDir)
        let repoA = try f.repository(f.a), repoB = try f.repository(f.b)
        let c = try ContainerDelta.prepare(repository: repoA, container: "lost")
        #expect(c.execmode == "P1")
        try f.carryDelta(c)
        #expect(try ContainerArrival.land(repository: repoB, container: c, options: SyncArrivalOptions()) == .created)
        // patchelf leaves the old strings as dead bytes, so look at what the loader reads.
        var pointing: [String] = []
        for dir in ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"] {
            for n in (try? FileIO.listDirectory(f.root(f.b, id) + dir)) ?? [] {
                guard let elf = ElfFile.read(f.root(f.b, id) + dir + "/" + n) else { continue }
                if [elf.interpreter, elf.rpath, elf.runpath].contains(where: { $0?.contains(f.a) == true }) { pointing.append(dir + "/" + n) }
            }
        }
        #expect(pointing == [], "ELF files whose interpreter or rpath is on the source: \(pointing)")
        let run = f.udocker(f.b, ["run", "lost", "/bin/echo", "ran in P1"])
        #expect(run.status == 0 && run.stdout == "ran in P1\n", "\(run.stdout)\(run.stderr)")
    }

    /// Timings on a 20,000-file image (UDOCKER_BENCH=1): first and second prepare of an unchanged
    /// auto and copy container, a prepare after one changed file, and an arrival.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["UDOCKER_BENCH"] != nil)) func timings20000Files() throws {
        let tmp = makeTempDirectory("delta-bench")
        defer { try? FileIO.removeTree(tmp) }
        let root = tmp + "/root"
        for (tree, count) in [("usr/share/data", 14000), ("usr/lib/mod", 2000), ("etc/conf", 2000), ("var/lib/db", 2000)] {
            for i in 0..<count {
                let sub = "\(root)/\(tree)/d\(i / 100)"
                if i % 100 == 0 { try FileIO.mkdirs(sub) }
                try FileIO.writeAtomically("\(sub)/f\(i)", Array(String(repeating: "line \(i) of \(tree)\n", count: 8).utf8))
            }
        }
        _ = spawnAndCollect(["/bin/tar", "-C", root, "-cf", tmp + "/layer.tar", "."], environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
        let layout = try OCILayout(dir: tmp + "/layout")
        layout.tag(try layout.addImage(tar: tmp + "/layer.tar", compression: "gzip", arch: "amd64"), as: "bench:20k")
        try layout.writeIndex()
        _ = spawnAndCollect(["/bin/tar", "-C", tmp + "/layout", "-cf", tmp + "/image.tar", "."], environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
        let env = ["UDOCKER_DIR": tmp + "/A"]
        let l = runUdocker(["load", "-i", tmp + "/image.tar"], env: env)
        try #require(l.status == 0, "load: \(l.stderr)")
        let repoA = try Repository.create(at: tmp + "/A").repository, repoB = try Repository.create(at: tmp + "/B").repository
        let name = try #require(try ImageStore(repository: repoA, store: repoA.openStore()).images().first?.name.description)
        try TravelRepos.carryImage(name, from: repoA, to: repoB)
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            var a = timespec(), b = timespec()
            clock_gettime(CLOCK_MONOTONIC, &a)
            try body()
            clock_gettime(CLOCK_MONOTONIC, &b)
            return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) / 1e9
        }
        for mode in ["auto", "copy", "link"] {
            let c = runUdocker(["create", "--materialize=\(mode)", "--name=b-\(mode)", name], env: env)
            try #require(c.status == 0, "create: \(c.stderr)")
            sleep(1)
            var first = DeltaReport(), second = DeltaReport(), changed = DeltaReport()
            var sc: SyncContainer? = nil
            let t1 = try seconds { (sc, first) = try ContainerDelta.prepareReporting(repository: repoA, container: "b-\(mode)") }
            let t2 = try seconds { second = try ContainerDelta.prepareReporting(repository: repoA, container: "b-\(mode)").report }
            let id = try #require(sc?.id)
            try FileIO.writeAtomically(tmp + "/A/containers/\(id)/ROOT/etc/conf/d0/f0", Array("changed\n".utf8))
            var after: SyncContainer? = nil
            let t3 = try seconds { (after, changed) = try ContainerDelta.prepareReporting(repository: repoA, container: "b-\(mode)") }
            let moved = try #require(after)
            _ = try repoB.openStore().ingest(fileAt: repoA.openStore().blobPath(moved.delta.digest), expected: moved.delta.digest)
            let t4 = try seconds { _ = try ContainerArrival.land(repository: repoB, container: moved, options: SyncArrivalOptions()) }
            let t5 = try seconds { _ = try ContainerArrival.land(repository: repoB, container: moved, options: SyncArrivalOptions()) }
            print("delta-bench \(mode): first prepare \(String(format: "%.3f", t1)) s (hashed \(first.filesHashed)), second \(String(format: "%.3f", t2)) s (hashed \(second.filesHashed), written \(second.deltaWritten)), one file changed \(String(format: "%.3f", t3)) s (hashed \(changed.filesHashed), delta \(moved.delta.size) bytes), land \(String(format: "%.3f", t4)) s, land again (unchanged) \(String(format: "%.3f", t5)) s")
        }
    }
}
