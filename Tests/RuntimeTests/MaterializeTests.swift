// Materialisation from real store layers: whiteouts and opaque directories, hostile layers, devices,
// the three modes, hardlinks, breaking links and cloning.
import CAS
import Testing
@testable import Runtime
#if canImport(Glibc)
import Glibc
#endif

@Suite struct MaterializeTests {
    static let modes: [MaterializeMode] = [.link, .copy, .auto]

    @Test(arguments: modes) func whiteoutsAndOpaqueDirectoriesGiveTheExactTree(mode: MaterializeMode) throws {
        let f = try LayerFixture()
        let l1 = try f.layer([
            .dir("a"), .dir("a/b"), .file("a/b/f1", "1"), .file("a/b/f2", "2"), .file("a/keep", "k"),
            .file("top1", "t1"), .file("top2", "t2"), .dir("d"), .file("d/x", "x"),
            .dir("o"), .file("o/lower1", "l"), .dir("o/sub"), .file("o/sub/lower2", "l2"),
            .dir("m"), .file("m/old", "old"), .file("swap", "was a file"),
        ])
        let l2 = try f.layer([
            .file(".wh.top1", ""),                       // top level
            .file("a/b/.wh.f1", ""),                     // nested
            .file(".wh.d", ""),                          // a whole directory
            .dir("o"), .file("o/.wh..wh..opq", ""), .file("o/upper", "u"),   // opaque keeps its own layer
            .file("a/b/f3", "3"),
            .dir("m", mode: 0o750), .file("m/new", "new"),                 // dir over dir merges
            .dir("swap"), .file("swap/inside", "i"),                        // dir replaces file
            .file(".wh.nothing", ""),                                       // whiteout of nothing
        ])
        let l3 = try f.layer([.file("top1", "again"), .file("o/.wh.upper", ""), .file("a/.wh.keep", "")])
        let (root, _) = try f.materialize([l1, l2, l3], mode)
        let expected: [String: String] = [
            "a": "d", "a/b": "d", "a/b/f2": "f", "a/b/f3": "f", "top1": "f", "top2": "f",
            "o": "d", "m": "d", "m/old": "f", "m/new": "f", "swap": "d", "swap/inside": "f",
        ]
        #expect(try listTree(root) == expected)
        #expect(try readText(root + "/top1") == "again")
        #expect(try readText(root + "/a/b/f2") == "2")
        #expect((lstatOf(root + "/m")?.st_mode ?? 0) & 0o777 == 0o750)
    }

    @Test func opaqueRootHidesEveryLowerEntry() throws {
        let f = try LayerFixture()
        let l1 = try f.layer([.file("x", "x"), .dir("y"), .file("y/z", "z")])
        let l2 = try f.layer([.file(".wh..wh..opq", ""), .file("new", "n")])
        let (root, _) = try f.materialize([l1, l2], .link)
        #expect(try listTree(root) == ["new": "f"])
    }

    @Test(arguments: modes) func hostileLayersChangeNothingOutsideRoot(mode: MaterializeMode) throws {
        let f = try LayerFixture("hostile")
        let canary = f.dir + "/canary"
        try FileIO.mkdirs(canary)
        let climb = String(repeating: "../", count: 12) + String(canary.dropFirst())
        let l1 = try f.layer([
            .symlink("evil", canary), .symlink("rel", climb), .dir("d"), .symlink("d/up", "../../.."),
        ])
        let l2 = try f.layer([
            .file("evil/pwned", "owned"),              // parent is a lower layer's absolute symlink
            .file("rel/pwned2", "owned"),              // parent climbs out with ../
            .file("d/up/pwned3", "owned"),
            .hardlink("hl", "/etc/passwd"),            // hardlink to a host file
            .file("../escape", "owned"),               // .. entry
            .file("/abs", "inside"),                   // absolute name lands inside
        ])
        let (root, report) = try f.materialize([l1, l2], mode)
        #expect(try FileIO.listDirectory(canary).isEmpty)
        #expect(!FileIO.exists(f.dir + "/escape"))
        #expect(!FileIO.exists(root + "/hl"))
        #expect(try readText(root + "/abs") == "inside")
        #expect(try listTree(root) == ["evil": "l", "rel": "l", "d": "d", "d/up": "l", "abs": "f"])
        #expect(report.notes.contains { $0.contains("'evil/pwned'") && $0.contains("symlink") }, "\(report.notes)")
        #expect(report.notes.contains { $0.contains("'rel/pwned2'") }, "\(report.notes)")
    }

    @Test func deviceNodesAreSkippedWithANote() throws {
        let f = try LayerFixture()
        let l = try f.layer([.dir("dev"), TarItem(path: "dev/null", kind: .char(1, 3), mode: 0o666),
                             TarItem(path: "dev/sda", kind: .block(8, 0), mode: 0o660),
                             TarItem(path: "dev/fifo", kind: .fifo, mode: 0o644), .file("etc/x", "x")])
        let (root, report) = try f.materialize([l], .auto)
        #expect(try listTree(root) == ["dev": "d", "dev/fifo": "p", "etc": "d", "etc/x": "f"])
        #expect(report.notes.contains { $0.contains("device node '/dev/null' not created") }, "\(report.notes)")
        #expect(report.notes.contains { $0.contains("'/dev/sda'") })
    }

    @Test func linkModeSharesStoreInodesAndRefusesInPlaceWrites() throws {
        let f = try LayerFixture()
        let l = try f.layer([.file("usr/bin/tool", "binary", mode: 0o755), .file("etc/conf", "a=1"), .file("empty", "")])
        let (root, report) = try f.materialize([l], .link)
        #expect(report.linked == 2 && report.emptyFiles == 1 && report.copied == 0)
        let c = try #require(lstatOf(root + "/etc/conf"))
        let s = try #require(lstatOf(f.storeFile(l, "etc/conf")))
        #expect(c.st_ino == s.st_ino)
        #expect(c.st_mode & 0o222 == 0)                                     // read-only
        let e = try #require(lstatOf(root + "/empty"))
        #expect(e.st_nlink == 1)                                            // empty files are never linked
        if geteuid() != 0 {                                                 // root bypasses permissions
            let fd = open(root + "/etc/conf", O_WRONLY)
            let err = errno
            if fd >= 0 { close(fd) }
            #expect(fd < 0 && err == EACCES)
        }
        #expect(try f.store.verify(layer: l).problems.isEmpty)
        #expect(try readText(f.storeFile(l, "etc/conf")) == "a=1")
    }

    @Test func copyModeKeepsOriginalModesAndIsIndependent() throws {
        let f = try LayerFixture()
        let l = try f.layer([
            .file("bin/suid", "s", mode: 0o4755, mtime: 1_500_000_000), .file("etc/secret", "x", mode: 0o640),
            .file("etc/ro", "r", mode: 0o444), .dir("tmp", mode: 0o1777), .file("h1", "same"), .hardlink("h2", "h1"),
        ])
        let (root, report) = try f.materialize([l], .copy)
        #expect(report.linked == 0)
        #expect(try #require(lstatOf(root + "/bin/suid")).st_mode & 0o7777 == 0o4755)
        #expect(try #require(lstatOf(root + "/bin/suid")).st_mtim.tv_sec == 1_500_000_000)
        #expect(try #require(lstatOf(root + "/etc/secret")).st_mode & 0o7777 == 0o640)
        #expect(try #require(lstatOf(root + "/etc/ro")).st_mode & 0o7777 == 0o444)
        #expect(try #require(lstatOf(root + "/tmp")).st_mode & 0o7777 == 0o1777)
        let c = try #require(lstatOf(root + "/etc/secret"))
        #expect(c.st_ino != (try #require(lstatOf(f.storeFile(l, "etc/secret")))).st_ino)
        // A hardlink of the layer is a hardlink in the container, not of the store.
        let h1 = try #require(lstatOf(root + "/h1")), h2 = try #require(lstatOf(root + "/h2"))
        #expect(h1.st_ino == h2.st_ino && h1.st_nlink == 2)
        // Writing the copy leaves the store alone.
        let fd = open(root + "/etc/secret", O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        _ = write(fd, "changed", 7)
        close(fd)
        #expect(try readText(f.storeFile(l, "etc/secret")) == "x")
    }

    @Test func autoLinksReadMostlyTreesAndCopiesTheRest() throws {
        let f = try LayerFixture()
        let l = try f.layer([.file("usr/bin/x", "x", mode: 0o755), .file("etc/x", "e"), .file("var/lib/db", "d"),
                             .file("opt/app/y", "y"), .file("usrx/z", "z")])
        let (root, _) = try f.materialize([l], .auto)
        func shared(_ p: String) throws -> Bool {
            try #require(lstatOf(root + "/" + p)).st_ino == (try #require(lstatOf(f.storeFile(l, p)))).st_ino
        }
        #expect(try shared("usr/bin/x"))
        #expect(try shared("opt/app/y"))
        #expect(try !shared("etc/x"))
        #expect(try !shared("var/lib/db"))
        #expect(try !shared("usrx/z"))                       // a prefix of the name is not the directory
        // The split is configurable.
        let (root2, _) = try f.materialize([l], .auto, linkDirs: ["/etc"])
        #expect(try #require(lstatOf(root2 + "/etc/x")).st_ino == (try #require(lstatOf(f.storeFile(l, "etc/x")))).st_ino)
        #expect(try #require(lstatOf(root2 + "/usr/bin/x")).st_ino != (try #require(lstatOf(f.storeFile(l, "usr/bin/x")))).st_ino)
    }

    @Test func breakLinkMakesAnIndependentWritableCopy() throws {
        let f = try LayerFixture()
        let l = try f.layer([.file("etc/passwd", "root:x:0:0\n")])
        let (root, _) = try f.materialize([l], .link)
        #expect(try Materializer.breakLink(root + "/etc/passwd"))
        let st = try #require(lstatOf(root + "/etc/passwd"))
        #expect(st.st_nlink == 1 && st.st_mode & 0o200 != 0)
        let fd = open(root + "/etc/passwd", O_WRONLY | O_APPEND)
        #expect(fd >= 0)
        _ = write(fd, "user\n", 5)
        close(fd)
        #expect(try readText(root + "/etc/passwd") == "root:x:0:0\nuser\n")
        #expect(try readText(f.storeFile(l, "etc/passwd")) == "root:x:0:0\n")
        #expect(try !Materializer.breakLink(root + "/etc/passwd"))   // already independent
    }

    @Test func cloneOfALinkContainerLinksWhatIsStillTheStoresAndCopiesChanges() throws {
        let f = try LayerFixture()
        var items: [TarItem] = [.dir("usr"), .dir("usr/share")]
        for i in 0..<200 { items.append(.file("usr/share/f\(i)", String(repeating: "data\(i)", count: 50))) }
        items += [.file("etc/conf", "original"), .symlink("usr/lnk", "share/f1")]
        let l = try f.layer(items)
        let (src, _) = try f.materialize([l], .link)
        try Materializer.breakLink(src + "/etc/conf")
        let fd = open(src + "/etc/conf", O_WRONLY | O_TRUNC)
        _ = write(fd, "changed", 7)
        close(fd)
        let dst = f.dir + "/clone"
        try FileIO.mkdirs(dst, mode: 0o700)
        let report = try ContainerTree.clone(store: f.store, layers: [l], from: src, to: dst)
        #expect(report.linked == 200 && report.copied == 1, "\(report)")
        #expect(try listTree(dst) == (try listTree(src)))
        for i in 0..<200 {
            #expect(try #require(lstatOf(dst + "/usr/share/f\(i)")).st_ino == (try #require(lstatOf(f.storeFile(l, "usr/share/f\(i)")))).st_ino)
        }
        #expect(try readText(dst + "/etc/conf") == "changed")
        #expect(try #require(lstatOf(dst + "/etc/conf")).st_ino != (try #require(lstatOf(src + "/etc/conf"))).st_ino)
        #expect(try readText(f.storeFile(l, "etc/conf")) == "original")
        #expect(try #require(lstatOf(dst + "/usr/lnk")).st_mode & S_IFMT == S_IFLNK)
    }

    @Test func damagedStoreLayerIsAnErrorNamingIt() throws {
        let f = try LayerFixture()
        let l = try f.layer([.file("a/file", "content")])
        #expect(unlink(f.storeFile(l, "a/file")) == 0)
        #expect(throws: RuntimeError.self) { try f.materialize([l], .link) }
    }

    @Test func pythonStyleContainerJSON() {
        let out = PythonJSON.dump(Array(#"{"b":{"c":"é/x","e":[]},"a":[1,2.5,true,null],"d":{}}"#.utf8))
        #expect(out.map { String(decoding: $0, as: UTF8.self) } == #"{"b": {"c": "\u00e9/x", "e": []}, "a": [1, 2.5, true, null], "d": {}}"#)
        #expect(PythonJSON.dump(Array("{\"a\":".utf8)) == nil)
    }
}

@Suite struct LayerTreeInputTests {
    @Test func fastReaderAgreesWithTheStoresDecoder() throws {
        let f = try LayerFixture()
        let l = try f.layer([.file("a \"quoted\" näme\\x", "1", mode: 0o4755, mtime: 1_234_567_890), .dir("d", mode: 0o700),
                             .symlink("d/s", "../a \"quoted\" näme\\x"), .hardlink("d/h", "a \"quoted\" näme\\x"),
                             .file(".wh.gone", ""), .file("o/.wh..wh..opq", "")])
        let fast = try #require(LayerTreeInput.read(f.store.layout.layerManifest(l)))
        let slow = LayerTreeInput(try #require(try f.store.layer(diffID: l)))
        #expect(fast.entries.map(\.path) == slow.entries.map(\.path))
        #expect(fast.entries.map(\.kind) == slow.entries.map(\.kind))
        #expect(fast.entries.map(\.mode) == slow.entries.map(\.mode))
        #expect(fast.entries.map(\.mtime) == slow.entries.map(\.mtime))
        #expect(fast.entries.map(\.size) == slow.entries.map(\.size))
        #expect(fast.entries.map(\.target) == slow.entries.map(\.target))
        #expect(fast.whiteouts == ["gone"] && fast.opaqueDirs == ["o"])
        #expect(fast.entries.contains { $0.path == "a \"quoted\" näme\\x" && $0.mode == 0o4755 })
    }
}
