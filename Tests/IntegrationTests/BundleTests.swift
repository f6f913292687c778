// Offline bundles through the binary: export --repo / import --repo round trip (images and a
// container changed by a run), skopeo reading the bundle, --have with store have, a pipe, kill -9
// of the import and the rerun, and hostile bundles refused with nothing recorded.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A source repository with two images and (where P1 runs) a container changed by a run.
private final class BundleRepos {
    let s: SyncRepos
    var source: String { s.source.repo }
    /// The container's id, when P1 could run it.
    private(set) var container: String?

    init(container: Bool = true) throws {
        s = try SyncRepos(images: ["test/busybox:oci", "test/many:t00"], big: true)
        if container && ExecutionModeSupport.available(["P1"]) {
            let c = s.run(["create", "--name=job", "test/busybox:oci"])
            try #require(c.status == 0, "create: \(c.stderr)")
            self.container = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let r = s.run(["run", "job", "/bin/sh", "-c",
                           "echo added > /added && echo more >> /added && mkdir /emptydir && ln -s added /link && ln /added /hard && chmod 600 /added"])
            try #require(r.status == 0, "run: \(r.stdout)\(r.stderr)")
        }
    }

    /// A new empty repository.
    func repository(_ name: String) throws -> String {
        let dir = s.target(name)
        let m = s.on(dir, ["mkrepo", dir])
        try #require(m.status == 0, "mkrepo: \(m.stderr)")
        return dir
    }

    func export(_ args: [String]) -> (status: Int32, stdout: String, stderr: String, report: [String: Int64]) {
        s.reported(["export", "--repo"], args)
    }

    func importBundle(_ into: String, _ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String, report: [String: Int64]) {
        s.reported(["--repo=" + into, "import", "--repo"], args, extra)
    }

    func snapshot(_ repo: String, _ id: String) throws -> TreeSnapshot {
        try TreeSnapshot(repo + "/containers/\(id)/ROOT", inodes: false, rootEntry: false, wholeSeconds: true, owners: false)
    }

    /// Rewrites the tar `from` into `to` with python's tarfile; `edit` is python code run for each
    /// member `m` (with its bytes in `data`, None for non-files) that appends what to write to `out`
    /// as (member, data) pairs.
    func rewrite(_ from: String, _ to: String, _ edit: String) throws {
        let script = s.source.tmp + "/rewrite-\(UInt32.random(in: 0...UInt32.max)).py"
        try writeFile(script, """
            import io, json, sys, tarfile
            src = tarfile.open(sys.argv[1])
            dst = tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT)
            for m in src.getmembers():
                data = src.extractfile(m).read() if m.isfile() else None
                out = []
            \(edit.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                for (mm, dd) in out:
                    if dd is not None:
                        mm.size = len(dd)
                        dst.addfile(mm, io.BytesIO(dd))
                    else:
                        dst.addfile(mm)
            dst.close()
            """)
        _ = try runCommand("/usr/bin/python3", [script, from, to])
    }
}

@Suite(.timeLimit(.minutes(10))) struct BundleTests {
    @Test func aBundleCarriesImagesAndAChangedContainerSkopeoReadsItAndASecondImportStoresNothing() throws {
        let f = try BundleRepos()
        let file = f.s.target("repo.tar")
        let e = f.export(["-o", file])
        try #require(e.status == 0, "export: \(e.stderr)")
        let (count, bytes) = try f.s.sourceObjects()
        #expect(e.report["objectsSent"] == Int64(count) && e.report["objectBytes"] == bytes, "\(e.report) vs \(count) \(bytes)")
        #expect(e.stdout.contains("Info: exported 3 image(s) and \(f.container == nil ? 0 : 1) container(s) to \(file)"), "\(e.stdout)")

        // An OCI image layout: skopeo reads its images by name.
        let home = makeTempDirectory("skopeo-home")
        defer { try? FileIO.removeTree(home) }
        let inspect = try runCommand("/usr/bin/skopeo", ["inspect", "oci-archive:\(file):test/busybox:oci"],
                                     environment: ["HOME": home, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": home])
        let digest = try #require(try JSONSerialization.jsonObject(with: Data(inspect)) as? [String: Any])["Digest"] as? String
        let record = try f.s.source.record("test/busybox", "oci")
        #expect(digest == record["manifestDigest"] as? String)

        let target = try f.repository("target")
        let i = f.importBundle(target, [file])
        try #require(i.status == 0, "import: \(i.stderr)")
        #expect(i.report["objectsSent"] == Int64(count) && i.report["objectsPresent"] == 0, "\(i.report)")
        #expect(f.s.images(target) == f.s.images(f.source))
        for (name, tag) in [("test/busybox", "oci"), ("test/many", "t00"), ("test/big", "1")] {
            #expect(try FileIO.readFile(f.source + "/repos/\(name)/\(tag)/image.json") == FileIO.readFile(target + "/repos/\(name)/\(tag)/image.json"))
        }
        if let id = f.container {
            let d = try f.snapshot(target, id).differences(from: try f.snapshot(f.source, id))
            #expect(d == [], "\(d)")
            let r = f.s.on(target, ["run", "job", "/bin/sh", "-c", "cat /added"])
            #expect(r.status == 0 && r.stdout == "added\nmore\n", "\(r.stdout)\(r.stderr)")
        }
        let v = f.s.verify(target)
        #expect(v.ok, "\(v.text)")
        #expect(f.s.tempFiles(target).isEmpty)

        let again = f.importBundle(target, ["-q", file])
        #expect(again.status == 0 && again.stdout.isEmpty && again.stderr.isEmpty, "\(again)")
        #expect(again.report["objectsSent"] == 0 && again.report["objectsPresent"] == Int64(count), "\(again.report)")
    }

    @Test func haveLeavesOutWhatTheTargetHoldsAndAStoreThatLacksItRefusesTheBundle() throws {
        let f = try BundleRepos(container: false)
        let target = try f.repository("target")
        let first = f.s.target("first.tar")
        try #require(f.export(["-o", first, "test/busybox:oci"]).status == 0)
        try #require(f.importBundle(target, [first]).status == 0)
        let have = f.s.target("target.have")
        let h = f.s.on(target, ["store", "have", "-o", have])
        try #require(h.status == 0, "store have: \(h.stderr)")

        let full = f.s.target("full.tar"), part = f.s.target("part.tar")
        try #require(f.export(["-o", full]).status == 0)
        let p = f.export(["-o", part, "--have=" + have])
        try #require(p.status == 0, "export --have: \(p.stderr)")
        // Only busybox's layer is left out; its manifest and config always go (the bundle stays inspectable).
        let busyboxLayers = try f.s.source.layerBlobs("test/busybox", "oci")
        #expect(p.report["objectsPresent"] == Int64(busyboxLayers.count), "\(p.report)")
        let listing = String(decoding: try runCommand("/bin/tar", ["-tf", part]), as: UTF8.self)
        for l in busyboxLayers { #expect(!listing.contains(l), "the layer the target has is in the bundle") }
        #expect(try SyncRepos.size(of: part) < SyncRepos.size(of: full))

        let i = f.importBundle(target, [part])
        try #require(i.status == 0, "import: \(i.stderr)")
        #expect(f.s.images(target) == f.s.images(f.source))
        #expect(f.s.verify(target).ok)

        // A store without what the bundle left out: a clear error, nothing recorded.
        let other = try f.repository("other")
        let o = f.importBundle(other, [part])
        #expect(o.status != 0)
        #expect(o.stderr.contains("store have -o FILE") && o.stderr.contains("leaves out \(busyboxLayers.count) object(s)"), "\(o.stderr)")
        #expect(f.s.images(other).isEmpty)
        #expect(f.s.verify(other).ok)
    }

    @Test func aBundleGoesThroughAPipe() throws {
        let f = try BundleRepos(container: false)
        let target = try f.repository("target")
        let u = udockerBinaryPath(), root = geteuid() == 0 ? "--allow-root " : ""
        let script = "'\(u)' \(root)--repo='\(f.source)' export --repo - test/many:t00 | '\(u)' \(root)--repo='\(target)' import --repo -"
        let r = spawnAndCollect(["/bin/sh", "-c", script], environment: ["PATH": "/usr/bin:/bin", "HOME": f.s.source.tmp, "UDOCKER_NOSYSCONF": "1"], stdin: nil)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("from standard input"), "\(r.stdout)")
        #expect(f.s.images(target) == ["test/many:t00"])
        #expect(f.s.verify(target).ok)
    }

    @Test(arguments: ["bundle-import-object-1", "bundle-import-object-3", "bundle-import-before-refs"])
    func aKilledImportLeavesAStoreThatVerifiesAndTheRerunStoresOnlyWhatIsMissing(failpoint: String) throws {
        let f = try BundleRepos(container: false)
        let file = f.s.target("repo.tar")
        try #require(f.export(["-o", file]).status == 0)
        let target = try f.repository("target")
        let killed = f.importBundle(target, [file], ["UDOCKER_FAILPOINT": failpoint])
        #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
        #expect(f.s.images(target).isEmpty, "an image was recorded before all of it was there")
        let v = f.s.verify(target)
        #expect(v.ok, "\(v.text)")
        let storedBefore = f.s.blobs(target).count
        let rerun = f.importBundle(target, [file])
        try #require(rerun.status == 0, "rerun: \(rerun.stderr)")
        #expect(rerun.report["objectsPresent"] == Int64(storedBefore), "\(rerun.report), \(storedBefore) there before")
        #expect(f.s.images(target) == f.s.images(f.source))
        #expect(f.s.verify(target).ok)
    }

    @Test func hostileBundlesAreRefusedAndNothingIsRecorded() throws {
        let f = try BundleRepos(container: false)
        let good = f.s.target("good.tar")
        try #require(f.export(["-o", good, "test/busybox:oci"]).status == 0)
        let layer = try #require(try f.s.source.layerBlobs("test/busybox", "oci").first)
        let cases: [(name: String, edit: String, says: String)] = [
            ("flipped", "if m.name.endswith('\(layer)'):\n    data = bytes([data[0] ^ 1]) + data[1:]\nout.append((m, data))",
             "does not match its digest"),
            ("escape", "out.append((m, data))\nif m.name == 'oci-layout':\n    e = tarfile.TarInfo('../escaped')\n    out.append((e, b'x'))",
             "leads outside the archive"),
            ("symlink", "if m.name.endswith('\(layer)'):\n    m.type = tarfile.SYMTYPE\n    m.linkname = '/etc/passwd'\n    data = None\nout.append((m, data))",
             "not a regular file"),
            ("unlisted", "out.append((m, data))\nif m.name == 'udocker/bundle.json':\n    e = tarfile.TarInfo('blobs/sha256/' + '0' * 64)\n    out.append((e, b'x'))",
             "does not list"),
            ("oci-archive", "if m.name != 'udocker/bundle.json':\n    out.append((m, data))", "udocker load"),
            ("future", "if m.name == 'udocker/bundle.json':\n    j = json.loads(data)\n    j['format'] = 99\n    data = json.dumps(j).encode()\nout.append((m, data))",
             "format 99"),
            ("bad-name", "if m.name == 'udocker/bundle.json':\n    j = json.loads(data)\n    j['images'][0]['name'] = '../../etc:x'\n    data = json.dumps(j).encode()\nout.append((m, data))",
             "invalid image name"),
        ]
        for c in cases {
            let file = f.s.target(c.name + ".tar")
            try f.rewrite(good, file, c.edit)
            let target = try f.repository("t-" + c.name)
            let r = f.importBundle(target, [file])
            #expect(r.status == 1 && r.stderr.contains(c.says), "\(c.name): \(r.stderr)")
            #expect(f.s.images(target).isEmpty, "\(c.name): an image was recorded")
            #expect(!FileIO.exists(f.s.target("escaped")) && !FileIO.exists(target + "/escaped"), "\(c.name)")
            #expect(f.s.verify(target).ok, "\(c.name)")
            if c.name == "flipped" { #expect(!f.s.blobs(target).contains(layer), "the damaged layer was stored") }
        }
    }
}
