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

    /// Device nodes are never created: those of /dev are listed apart (for -D only), others get a note.
    @Test func deviceNodesAreSkipped() throws {
        let f = try LayerFixture()
        let l = try f.layer([.dir("dev"), TarItem(path: "dev/null", kind: .char(1, 3), mode: 0o666),
                             TarItem(path: "dev/sda", kind: .block(8, 0), mode: 0o660),
                             TarItem(path: "dev/fifo", kind: .fifo, mode: 0o644), .file("etc/x", "x"),
                             TarItem(path: "etc/tty0", kind: .char(4, 0), mode: 0o620)])
        let (root, report) = try f.materialize([l], .auto)
        #expect(try listTree(root) == ["dev": "d", "dev/fifo": "p", "etc": "d", "etc/x": "f"])
        #expect(report.devicesNotCreated == ["/dev/null", "/dev/sda"])
        #expect(report.notes == ["device node '/etc/tty0' not created: udocker containers use the host's /dev"], "\(report.notes)")
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

    /// 40 directories of 10 files, one inode with a name in every directory, directory times set.
    static func manyDirectories() -> [TarItem] {
        func dir(_ p: String, _ mtime: Int) -> TarItem { TarItem(path: p, kind: .dir, mode: 0o755, mtime: mtime) }
        var items: [TarItem] = [dir("d00", 1_600_000_000), .file("d00/shared", "one inode")]
        for d in 0..<40 {
            let name = String(format: "d%02d", d)
            if d > 0 { items.append(dir(name, 1_600_000_000 + d)) }
            for f in 0..<10 { items.append(.file("\(name)/f\(f)", "\(name)/f\(f)", mtime: 1_500_000_000 + f)) }
            if d > 0 { items.append(.hardlink("\(name)/shared", "d00/shared")) }
        }
        return items
    }

    @Test(arguments: [1, 2, 4], modes) func severalThreadsMakeTheSameTree(workers: Int, mode: MaterializeMode) throws {
        let f = try LayerFixture()
        let l = try f.layer(MaterializeTests.manyDirectories())
        let (root, report) = try f.materialize([l], mode, workers: workers)
        #expect(report.directories == 40)
        let sharedInode = try #require(lstatOf(root + "/d00/shared")).st_ino
        for d in 0..<40 {
            let dir = String(format: "d%02d", d)
            #expect(lstatOf(root + "/" + dir)?.st_mtim.tv_sec == 1_600_000_000 + d, "mtime of \(dir)")
            for n in 0..<10 { #expect(try readText(root + "/\(dir)/f\(n)") == "\(dir)/f\(n)") }
            // Every name of the layer's hardlinked file is one inode: the store's when linked, else the
            // container's first copy, whichever thread made it.
            #expect(lstatOf(root + "/\(dir)/shared")?.st_ino == sharedInode, "inode of \(dir)/shared")
        }
        if mode == .copy {
            #expect(report.copied == 401 && report.hardlinks == 39 && report.linked == 0)
            #expect(sharedInode != (try #require(lstatOf(f.storeFile(l, "d00/shared")))).st_ino)
            #expect(lstatOf(root + "/d00/shared")?.st_nlink == 40)
        } else if mode == .link {
            #expect(report.linked == 440)
            #expect(sharedInode == (try #require(lstatOf(f.storeFile(l, "d00/shared")))).st_ino)
        }
    }

    @Test func aFailureWithSeveralThreadsStopsThemAllAndLeaksNoDescriptor() throws {
        let f = try LayerFixture()
        let l = try f.layer(MaterializeTests.manyDirectories())
        // A file the layer lists is gone from the store: the link fails in whichever thread meets it.
        #expect(chmod(f.store.layerRoot(l) + "/d27", 0o700) == 0)
        #expect(unlink(f.storeFile(l, "d27/f3")) == 0)
        #expect(throws: RuntimeError.self) { _ = try f.materialize([l], .link, workers: 4) }
        // Other tests run in this process at the same time: count only descriptors of this test's
        // container or layer directories.
        let mine = try FileIO.listDirectory("/proc/self/fd").compactMap { fd -> String? in
            var buf = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/fd/" + fd, &buf, buf.count - 1)
            guard n > 0 else { return nil }
            let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return target.hasPrefix(f.dir + "/c") || target.hasPrefix(f.store.layerRoot(l)) ? target : nil
        }
        #expect(mine.isEmpty, "left open: \(mine)")
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

    @Test(arguments: [1, 2, 4], [MaterializeMode.link, .copy]) func cloneWithSeveralThreads(threads: Int, mode: MaterializeMode) throws {
        let f = try LayerFixture()
        let l = try f.layer(MaterializeTests.manyDirectories())
        let (src, _) = try f.materialize([l], mode)
        let dst = f.dir + "/clone-\(threads)"
        try FileIO.mkdirs(dst, mode: 0o700)
        let report = try ContainerTree.clone(store: f.store, layers: [l], from: src, to: dst, threads: threads)
        #expect(try listTree(dst) == (try listTree(src)))
        #expect(report.directories == 40)
        let storeShared = try #require(lstatOf(f.storeFile(l, "d00/shared"))).st_ino
        let shared = try #require(lstatOf(dst + "/d00/shared")).st_ino
        for d in 0..<40 {
            let dir = String(format: "d%02d", d)
            #expect(lstatOf(dst + "/" + dir)?.st_mtim.tv_sec == 1_600_000_000 + d, "mtime of \(dir)")
            #expect(lstatOf(dst + "/\(dir)/shared")?.st_ino == shared, "inode of \(dir)/shared")
            for n in 0..<10 { #expect(try readText(dst + "/\(dir)/f\(n)") == "\(dir)/f\(n)") }
        }
        if mode == .link {
            // Still the store's files: linked again, no data copied.
            #expect(report.linked == 440 && report.copied == 0 && shared == storeShared, "\(report)")
        } else {
            // The source's own copies: copied again, the hardlinked one once, whichever thread got there first.
            #expect(report.copied == 401 && report.hardlinks == 39, "\(report)")
            let srcShared = try #require(lstatOf(src + "/d00/shared")).st_ino
            #expect(shared != storeShared && shared != srcShared)
            #expect(lstatOf(dst + "/d00/shared")?.st_nlink == 40)
        }
    }

    @Test(arguments: [1, 2, 4]) func removeTakesTheWholeTreeAndNothingOutsideIt(threads: Int) throws {
        let f = try LayerFixture()
        let l = try f.layer(MaterializeTests.manyDirectories())
        let (root, _) = try f.materialize([l], .auto)
        // Outside the tree: a directory and a file a hostile container might point at.
        let outside = f.dir + "/outside"
        try FileIO.mkdirs(outside + "/keep")
        try FileIO.writeAtomically(outside + "/file", Array("mine".utf8))
        #expect(symlink(outside, root + "/d05/out") == 0)
        #expect(symlink(outside + "/file", root + "/d06/outfile") == 0)
        // Directories the owner cannot write or read: made owner-rwx first, as `rm` must.
        try FileIO.mkdirs(root + "/d07/locked/deeper")
        try FileIO.writeAtomically(root + "/d07/locked/deeper/x", [1])
        #expect(chmod(root + "/d07/locked/deeper", 0o500) == 0)
        #expect(chmod(root + "/d07/locked", 0o000) == 0)
        try ContainerTree.remove(root, threads: threads)
        #expect(lstatOf(root) == nil)
        #expect(try readText(outside + "/file") == "mine")
        #expect((lstatOf(outside + "/keep")?.st_mode ?? 0) & S_IFMT == S_IFDIR)
        // The store's files (linked from the container) are untouched.
        #expect(try readText(f.storeFile(l, "d03/f1")) == "d03/f1")
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
