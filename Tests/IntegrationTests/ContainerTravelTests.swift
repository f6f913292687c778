// export --clone, import --clone and clone of a container set up in F3 (or R1) through the udocker
// binary: the copy is in P1 with the files the container had before setup, and runs on the other side.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Two repositories of one test, A with the host image loaded.
private final class TwoRepos {
    let tmp: String
    let a: String
    let b: String
    static let spec = HostImageSpec(name: "hostimg:travel", cmd: ["/bin/sh", "-c", "echo ran"],
                                    files: ["/etc/app.conf": "a=1\n"])

    init() throws {
        tmp = makeTempDirectory("travel-test")
        a = tmp + "/A"
        b = tmp + "/B"
        let l = run(a, ["load", "-i", try HostImage.shared(Self.spec)])
        try #require(l.status == 0, "load: \(l.stderr)")
        let m = run(b, ["mkrepo", b])
        try #require(m.status == 0, "mkrepo: \(m.stderr)")
    }

    deinit { try? FileIO.removeTree(tmp) }

    func run(_ repo: String, _ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: ["UDOCKER_DIR": repo])
    }

    /// A container of A set up in `mode` and run once there; returns its id and its ROOT before setup.
    func setUp(_ name: String, mode: String) throws -> (id: String, before: TreeSnapshot) {
        let c = run(a, ["create", "--name=\(name)", "hostimg:travel"])
        try #require(c.status == 0, "create: \(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let before = try snapshot(root(a, id))
        let s = run(a, ["setup", "--execmode=\(mode)", name])
        try #require(s.status == 0, "setup: \(s.stdout)\(s.stderr)")
        let r = run(a, ["run", name, "/bin/echo", "ran in \(mode)"])
        try #require(r.status == 0 && r.stdout == "ran in \(mode)\n", "\(mode) run: \(r.stdout)\(r.stderr)")
        return (id, before)
    }

    func root(_ repo: String, _ id: String) -> String { repo + "/containers/" + id + "/ROOT" }

    /// Owners left out: the copies an import or clone makes are the user's, where the source's files
    /// may be a sealed store's (its subordinate id); mtimes to the second, as a tar keeps them.
    func snapshot(_ root: String) throws -> TreeSnapshot {
        try TreeSnapshot(root, inodes: false, rootEntry: false, wholeSeconds: true, owners: false)
    }

    func execmode(_ repo: String, _ id: String) -> String {
        (try? String(decoding: FileIO.readFile(repo + "/containers/\(id)/execmode"), as: UTF8.self)) ?? ""
    }

    func id(_ repo: String, _ name: String) -> String {
        (ContainerLink.target(repo + "/containers/" + name))
    }

    /// What differs from the tree before setup, without what the run itself changed (the user added
    /// to passwd and group, which travels like any change a run makes).
    func differences(_ now: TreeSnapshot, _ before: TreeSnapshot) -> [String] {
        let runMade = ["/etc: ", "/etc/passwd: ", "/etc/group: "]
        return now.differences(from: before).filter { d in !runMade.contains { d.hasPrefix($0) } }
    }
}

private enum ContainerLink {
    static func target(_ path: String) -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        return n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ContainerTravelTests {
    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "P1"]))) func anF3ContainerExportedAsACloneImportsElsewhereInP1AndRuns() throws {
        let f = try TwoRepos()
        let (id, before) = try f.setUp("fc", mode: "F3")
        let setUp = try TreeSnapshot(f.a + "/containers/" + id)
        let e = f.run(f.a, ["export", "--clone", "-o", f.tmp + "/fc.tar", "fc"])
        try #require(e.status == 0, "export --clone: \(e.stderr)")
        #expect(try TreeSnapshot(f.a + "/containers/" + id).differences(from: setUp) == [], "export never changes the container")
        let i = f.run(f.b, ["import", "--clone", "--name=moved", f.tmp + "/fc.tar"])
        try #require(i.status == 0, "import --clone: \(i.stderr)")
        let newID = f.id(f.b, "moved")
        #expect(f.execmode(f.b, newID) == "P1")
        let d = f.differences(try f.snapshot(f.root(f.b, newID)), before)
        #expect(d == [], "\(d)")
        #expect(!FileIO.exists(f.b + "/containers/\(newID)/elfpatch.json"))
        let grep = spawnAndCollect(["/bin/grep", "-rlF", f.a, f.b + "/containers/" + newID], environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
        #expect(grep.stdout == "", "files naming the source repository: \(grep.stdout)")
        let r = f.run(f.b, ["run", "moved", "/bin/cat", "/etc/app.conf"])
        #expect(r.status == 0 && r.stdout == "a=1\n", "\(r.stdout)\(r.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "P1"]))) func anF3CloneTarOfAnOlderUdockerIsConvertedOnImport() throws {
        let f = try TwoRepos()
        let (id, before) = try f.setUp("old", mode: "F3")
        // What export --clone wrote before conversion: the directory as it is, patched files and all.
        let t = spawnAndCollect(["/bin/tar", "-C", f.a + "/containers/" + id, "-cf", f.tmp + "/old.tar", "."],
                                environment: ["PATH": "/usr/bin:/bin"], stdin: nil)
        try #require(t.status == 0, "tar: \(t.stderr)")
        // With the image in the target repository, the directories patching touched get its times back.
        let l = f.run(f.b, ["load", "-i", try HostImage.shared(TwoRepos.spec)])
        try #require(l.status == 0, "load: \(l.stderr)")
        let i = f.run(f.b, ["import", "--clone", "--name=old", f.tmp + "/old.tar"])
        try #require(i.status == 0, "import --clone: \(i.stderr)")
        let newID = f.id(f.b, "old")
        #expect(f.execmode(f.b, newID) == "P1")
        let d = f.differences(try f.snapshot(f.root(f.b, newID)), before)
        #expect(d == [], "\(d)")
        let r = f.run(f.b, ["run", "old", "/bin/echo", "ran in P1"])
        #expect(r.status == 0 && r.stdout == "ran in P1\n", "\(r.stdout)\(r.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "P1"]))) func aCloneOfAnF3ContainerIsInP1AndTheSourceStaysF3() throws {
        let f = try TwoRepos()
        let (id, before) = try f.setUp("src", mode: "F3")
        let setUp = try TreeSnapshot(f.a + "/containers/" + id)
        let c = f.run(f.a, ["clone", "--name=copy", "src"])
        try #require(c.status == 0, "clone: \(c.stderr)")
        let newID = f.id(f.a, "copy")
        #expect(f.execmode(f.a, newID) == "P1")
        let cd = f.differences(try f.snapshot(f.root(f.a, newID)), before)
        #expect(cd == [], "\(cd)")
        #expect(try TreeSnapshot(f.a + "/containers/" + id).differences(from: setUp) == [], "the source is unchanged")
        let r = f.run(f.a, ["run", "copy", "/bin/echo", "clone in P1"])
        #expect(r.status == 0 && r.stdout == "clone in P1\n", "\(r.stdout)\(r.stderr)")
        let s = f.run(f.a, ["run", "src", "/bin/echo", "source in F3"])
        #expect(s.status == 0 && s.stdout == "source in F3\n", "\(s.stdout)\(s.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["R1", "P1"]))) func anR1ContainerExportedAsACloneHasNoRuncFiles() throws {
        let f = try TwoRepos()
        let (id, before) = try f.setUp("rc", mode: "R1")
        let e = f.run(f.a, ["export", "--clone", "-o", f.tmp + "/rc.tar", "rc"])
        try #require(e.status == 0, "export --clone: \(e.stderr)")
        let i = f.run(f.b, ["import", "--clone", "--name=rc", f.tmp + "/rc.tar"])
        try #require(i.status == 0, "import --clone: \(i.stderr)")
        let newID = f.id(f.b, "rc")
        #expect(f.execmode(f.b, newID) == "P1")
        let d = f.differences(try f.snapshot(f.root(f.b, newID)), before)
        #expect(d == [], "\(d)")
        let r = f.run(f.b, ["run", "rc", "/bin/echo", "ran in P1"])
        #expect(r.status == 0 && r.stdout == "ran in P1\n", "\(r.stdout)\(r.stderr)")
        _ = id
    }

    /// `sync` carries containers as image + delta: they arrive with the same tree and run; an F3 one
    /// arrives in P1; a second sync sends no object bytes.
    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]))) func syncCarriesContainersAndASecondSyncSendsNothing() throws {
        let f = try TwoRepos()
        let c = f.run(f.a, ["create", "--name=job", "hostimg:travel"])
        try #require(c.status == 0, "create: \(c.stderr)")
        let job = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = f.run(f.a, ["run", "job", "/bin/sh", "-c", "echo result > /home/out.txt && rm /etc/app.conf && mkdir /var/empty"])
        try #require(r.status == 0, "run: \(r.stdout)\(r.stderr)")
        let withF3 = ExecutionModeSupport.available(["F3"])
        let fc = withF3 ? try f.setUp("fc", mode: "F3") : nil
        let s1 = f.run(f.a, ["sync", "--report=" + f.tmp + "/first.json", f.b])
        try #require(s1.status == 0, "sync: \(s1.stdout)\(s1.stderr)")
        let d = f.differences(try f.snapshot(f.root(f.b, job)), try f.snapshot(f.root(f.a, job)))
        #expect(d == [], "\(d)")
        let out = f.run(f.b, ["run", "job", "/bin/cat", "/home/out.txt"])
        #expect(out.status == 0 && out.stdout == "result\n", "\(out.stdout)\(out.stderr)")
        if let fc {
            #expect(f.execmode(f.b, fc.id) == "P1")
            #expect(f.differences(try f.snapshot(f.root(f.b, fc.id)), fc.before) == [])
            let run = f.run(f.b, ["run", "fc", "/bin/echo", "fc in P1"])
            #expect(run.status == 0 && run.stdout == "fc in P1\n", "\(run.stdout)\(run.stderr)")
            #expect(f.execmode(f.a, fc.id).hasPrefix("F3"), "the source stays as it was")
        }
        let first = try JSONSerialization.jsonObject(with: Data(FileIO.readFile(f.tmp + "/first.json"))) as? [String: Any]
        let report1 = first?["report"] as? [String: Any]
        #expect((report1?["containers"] as? Int) == (withF3 ? 2 : 1))
        let s2 = f.run(f.a, ["sync", "--report=" + f.tmp + "/second.json", f.b])
        try #require(s2.status == 0, "second sync: \(s2.stdout)\(s2.stderr)")
        let second = try JSONSerialization.jsonObject(with: Data(FileIO.readFile(f.tmp + "/second.json"))) as? [String: Any]
        let report2 = second?["report"] as? [String: Any]
        #expect((report2?["objectBytes"] as? Int) == 0, "\(second ?? [:])")
        #expect((report2?["objectsSent"] as? Int) == 0)
    }

    /// kill -9 of the receiving end while a container is being built: no half container, the store
    /// verifies, and the rerun lands it.
    @Test func aKilledArrivalLeavesNoHalfContainerAndTheRerunLandsIt() throws {
        let f = try TwoRepos()
        let c = f.run(f.a, ["create", "--name=job", "hostimg:travel"])
        try #require(c.status == 0, "create: \(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let killed = runUdocker(["sync", f.b], env: ["UDOCKER_DIR": f.a, "UDOCKER_FAILPOINT": "arrival-before-rename"])
        #expect(killed.status != 0)
        // Killed where it was meant to be: the container built aside, not yet renamed into place.
        #expect(try FileIO.listDirectory(f.b + "/containers").contains { $0.hasPrefix(".new.\(id).") }, "\(killed.stderr)")
        #expect(!FileIO.exists(f.b + "/containers/" + id))
        #expect(ContainerLink.target(f.b + "/containers/job") == "")
        let again = f.run(f.a, ["sync", f.b])
        try #require(again.status == 0, "rerun: \(again.stdout)\(again.stderr)")
        #expect(FileIO.isDirectory(f.root(f.b, id)))
        #expect(ContainerLink.target(f.b + "/containers/job") == id)
        let left = try FileIO.listDirectory(f.b + "/containers").filter { $0.hasPrefix(".") }
        #expect(left == [], "left in containers/: \(left)")
        let v = f.run(f.b, ["store", "verify"])
        #expect(v.status == 0, "store verify: \(v.stdout)\(v.stderr)")
    }

    /// kill -9 of the sending side while it writes a container's delta: nothing lands, the source
    /// container is unchanged, and the rerun sweeps the temp delta and lands the container.
    @Test func aSenderKilledWhileItWritesADeltaLeavesNothingAndTheRerunLandsIt() throws {
        let f = try TwoRepos()
        let c = f.run(f.a, ["create", "--name=job", "hostimg:travel"])
        try #require(c.status == 0, "create: \(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try writeFile(f.root(f.a, id) + "/added.txt", "made here\n")
        let before = try f.snapshot(f.root(f.a, id))
        let killed = runUdocker(["sync", f.b], env: ["UDOCKER_DIR": f.a, "UDOCKER_FAILPOINT": "container-delta-before-store"])
        #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
        #expect(try FileIO.listDirectory(f.a + "/sync").contains { $0.hasPrefix(".tmp.\(id).") }, "killed before the delta was written")
        #expect(!FileIO.exists(f.b + "/containers/" + id))
        #expect(try f.snapshot(f.root(f.a, id)).differences(from: before) == [], "the source container changed")
        let again = f.run(f.a, ["sync", f.b])
        try #require(again.status == 0, "rerun: \(again.stdout)\(again.stderr)")
        #expect(try FileIO.listDirectory(f.a + "/sync").filter { $0.hasPrefix(".tmp.") } == [], "the killed sync's temp delta is left")
        #expect(try FileIO.readFile(f.root(f.b, id) + "/added.txt") == Array("made here\n".utf8))
        #expect(f.run(f.b, ["store", "verify"]).status == 0)
    }
}
