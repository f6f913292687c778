// Tests of LayerUnpacker on well-formed layers: tree, store modes, digests, diff_id against sha256sum,
// compressions, whiteouts, replacement order, devices, long names, sparse files and broken input.
import Foundation
import Testing
@testable import CAS

@Suite struct LayerUnpackerTests {
    static let sampleEntries: [TarEntry] = [
        .dir("etc/"),
        .file("etc/hostname", "box\n"),
        .file("etc/shadow", "root:*:\n", mode: 0o640),
        .dir("usr/bin/", mode: 0o755, mtime: 1_500_000_000),
        .file("usr/bin/tool", "#!/bin/sh\necho hi\n", mode: 0o4755, mtime: 1_234_567_890),
        .file("usr/bin/writeonly", "w", mode: 0o200),
        .hardlink("usr/bin/tool-again", "usr/bin/tool"),
        .symlink("usr/bin/sh", "/bin/busybox"),
        .symlink("lib", "usr/lib"),
        .file("empty", ""),
        TarEntry(path: "run/fifo", kind: .fifo, mode: 0o644),
        .dir("tmp/", mode: 0o1777),
        .dir("private/", mode: 0o000),
        .file("private/secret", "s", mode: 0o600),
    ]

    @Test func unpacksTreeWithStoreModesDigestsAndTimes() throws {
        let box = try Sandbox()
        try writeTar(Self.sampleEntries, to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)

        #expect(m.compression == "none")
        #expect(m.skipped.isEmpty)
        #expect(m.blobs.isEmpty)
        #expect(m.entries.map(\.path) == Self.sampleEntries.map { String($0.path.trimmingCharacters(in: ["/"])) })

        // Files: content, digest, original mode in the manifest, read-only copy without setuid in the store.
        let tool = try #require(m.entry("usr/bin/tool"))
        #expect(tool.kind == .file)
        #expect(tool.mode == 0o4755)
        #expect(tool.size == 18)
        #expect(tool.digest == (try sha256("#!/bin/sh\necho hi\n")))
        #expect(tool.digest == (try SHA256Hasher.hash(fileAt: root + "/usr/bin/tool")).0)
        #expect(tool.mtime == 1_234_567_890)
        let toolStat = try #require(lstatOf(root + "/usr/bin/tool"))
        #expect(toolStat.st_mode & 0o7777 == 0o555)
        #expect(toolStat.st_mtim.tv_sec == 1_234_567_890)
        let writeOnly = try #require(lstatOf(root + "/usr/bin/writeonly"))
        #expect(writeOnly.st_mode & 0o7777 == 0o400)
        #expect(m.entry("usr/bin/writeonly")?.mode == 0o200)
        #expect(lstatOf(root + "/etc/shadow").map { $0.st_mode & 0o7777 } == 0o440)
        #expect(fileText(root + "/etc/hostname") == "box\n")
        for e in m.entries where e.kind == .file {
            let st = try #require(lstatOf(root + "/" + e.path))
            #expect(st.st_mode & 0o222 == 0, "store file \(e.path) must not be writable")
            let (digest, size) = try SHA256Hasher.hash(fileAt: root + "/" + e.path)
            #expect(e.digest == digest)
            #expect(e.size == size)
        }
        #expect(m.entry("empty")?.size == 0)
        #expect(m.entry("empty")?.digest == (try sha256("")))

        // Hardlink inside the layer: one inode, manifest names the target and carries its digest.
        let again = try #require(m.entry("usr/bin/tool-again"))
        #expect(again.kind == .hardlink)
        #expect(again.target == "usr/bin/tool")
        #expect(again.digest == tool.digest)
        let againStat = try #require(lstatOf(root + "/usr/bin/tool-again"))
        #expect(againStat.st_ino == toolStat.st_ino)
        #expect(againStat.st_nlink == 2)

        // Symlinks keep their text and are not followed.
        #expect(m.entry("usr/bin/sh")?.target == "/bin/busybox")
        #expect(readlinkText(root + "/usr/bin/sh") == "/bin/busybox")
        #expect(m.entry("lib")?.kind == .symlink)

        // FIFO created; directories owner-rwx, never group/world-writable, original mode recorded.
        #expect(lstatOf(root + "/run/fifo").map { $0.st_mode & S_IFMT } == S_IFIFO)
        #expect(m.entry("run/fifo")?.kind == .fifo)
        #expect(lstatOf(root + "/tmp").map { $0.st_mode & 0o7777 } == 0o755)
        #expect(m.entry("tmp")?.mode == 0o1777)
        #expect(lstatOf(root + "/private").map { $0.st_mode & 0o7777 } == 0o700)
        #expect(m.entry("private")?.mode == 0)
        #expect(fileText(root + "/private/secret") == "s")
        // Directory mtimes are set after their content was written.
        #expect(lstatOf(root + "/usr/bin").map { $0.st_mtim.tv_sec } == 1_500_000_000)
        // "run" was not in the tar: created as a plain parent, not recorded.
        #expect(m.entry("run") == nil)
        #expect(lstatOf(root + "/run").map { $0.st_mode & S_IFMT } == S_IFDIR)
    }

    func readlinkText(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count)
        return n < 0 ? nil : String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func diffIDIsSha256OfTheTarForEveryCompression() throws {
        let box = try Sandbox()
        let tarPath = box.path("layer.tar")
        try writeTar(Self.sampleEntries, to: tarPath)
        let expected = try sha256sum(tarPath)
        try run("/usr/bin/gzip", ["-k", "-n", tarPath])
        try run("/usr/bin/zstd", ["-q", "-k", tarPath, "-o", tarPath + ".zst"])
        try run("/usr/bin/xz", ["-k", tarPath])
        try run("/usr/bin/bzip2", ["-k", tarPath])
        var reference: LayerManifest?
        // Names hide the compression: it must be found from the content.
        for (file, name) in [("layer.tar", "none"), ("layer.tar.gz", "gzip"), ("layer.tar.zst", "zstd"),
                             ("layer.tar.xz", "xz"), ("layer.tar.bz2", "bzip2")] {
            let blob = box.path("blob-\(name)")
            #expect(rename(box.path(file), blob) == 0)
            let root = try box.emptyDirectory("root-\(name)")
            let m = try unpack(blob, into: root)
            #expect(m.diffID == expected, "diff_id from \(name)")
            #expect(m.compression == name)
            if let reference {
                #expect(m.entries == reference.entries, "same tree from \(name)")
            } else {
                reference = m
            }
            #expect(fileText(root + "/usr/bin/tool") == "#!/bin/sh\necho hi\n")
        }
    }

    @Test func verifiedBlobDigestIsTheDiffIDOfAPlainLayerOnly() throws {
        let box = try Sandbox()
        let tarPath = box.path("layer.tar")
        try writeTar(Self.sampleEntries, to: tarPath)
        let tarDigest = try sha256sum(tarPath)
        func unpack(_ blob: String, into name: String, verified: Digest?) throws -> LayerManifest {
            let fd = open(blob, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CASError.io("open", blob, errno) }
            defer { close(fd) }
            return try LayerUnpacker().unpack(fd: fd, sourceName: blob, into: try box.emptyDirectory(name),
                                              verifiedBlobDigest: verified)
        }

        // Plain layer: the blob digest is the diff_id; the result is the one hashing gives.
        let hashed = try unpack(tarPath, into: "hashed", verified: nil)
        let known = try unpack(tarPath, into: "known", verified: tarDigest)
        #expect(hashed.diffID == tarDigest)
        #expect(known == hashed)
        #expect(fileText(box.path("known/usr/bin/tool")) == "#!/bin/sh\necho hi\n")
        // It is taken as given, not hashed again (that is the point); callers pass only verified digests.
        let other = try sha256("some other blob")
        #expect(try unpack(tarPath, into: "taken", verified: other).diffID == other)

        // Compressed layer: the blob digest is not the diff_id, so it is ignored and the tar is hashed.
        try run("/usr/bin/gzip", ["-k", "-n", tarPath])
        try run("/usr/bin/zstd", ["-q", "-k", tarPath, "-o", tarPath + ".zst"])
        for blob in [tarPath + ".gz", tarPath + ".zst"] {
            let blobDigest = try sha256sum(blob)
            let m = try unpack(blob, into: "root-\(blob.suffix(3))", verified: blobDigest)
            #expect(m.compression != "none")
            #expect(m.diffID == tarDigest, "diff_id of \(blob)")
            #expect(m.entries == hashed.entries)
        }
    }

    @Test func diffIDCoversPaddingAfterTheEndMarker() throws {
        // GNU tar pads to 10 KiB records: those zero bytes are part of the diff_id too.
        let box = try Sandbox()
        try FileIO.mkdirs(box.path("src"))
        try box.write("src/a", Array("hello".utf8))
        try run("/usr/bin/tar", ["--format=gnu", "-b", "64", "-cf", box.path("gnu.tar"), "-C", box.path("src"), "."])
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("gnu.tar"), into: root)
        #expect(m.diffID == (try sha256sum(box.path("gnu.tar"))))
        #expect(m.entry("")?.kind == .directory)
        #expect(fileText(root + "/a") == "hello")
    }

    @Test func whiteoutsAndOpaqueDirsAreRecordedNotCreated() throws {
        let box = try Sandbox()
        try writeTar([
            .file(".wh.gone", ""),
            .dir("a/"),
            .file("a/.wh.old", ""),
            .file("a/b/c/.wh.deep", ""),
            .file("a/b/.wh..wh..opq", ""),
            .file(".wh..wh..opq", ""),
            .file("a/keep", "k"),
            .file("x/.wh..wh.plnk", ""),
        ], to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(m.whiteouts == ["gone", "a/old", "a/b/c/deep"])
        #expect(m.opaqueDirs == ["a/b", ""])
        #expect(try FileIO.listDirectory(root).sorted() == ["a"])
        #expect(try FileIO.listDirectory(root + "/a") == ["keep"])
        #expect(m.entries.map(\.path) == ["a", "a/keep"])
        #expect(m.skipReason("x/.wh..wh.plnk")?.contains("aufs") == true)
    }

    @Test func laterEntriesReplaceEarlierOnes() throws {
        let box = try Sandbox()
        try writeTar([
            .file("f", "first"),
            .file("f", "second"),
            .file("d/inner", "i"),
            .dir("d/", mode: 0o700),
            .dir("d/", mode: 0o750),
            .dir("gone/"),
            .file("gone/child", "c"),
            .file("gone", "now a file"),
            .file("x", "file"),
            .dir("x/"),
            .file("x/y", "y"),
            .file("orig", "shared"),
            .hardlink("alias", "orig"),
            .file("alias", "replaced"),
        ], to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(fileText(root + "/f") == "second")
        #expect(m.entries.filter { $0.path == "f" }.count == 1)
        #expect(m.entry("f")?.digest == (try sha256("second")))
        // Directory seen twice keeps its content and takes the later mode.
        #expect(fileText(root + "/d/inner") == "i")
        #expect(m.entries.filter { $0.path == "d" }.map(\.mode) == [0o750])
        #expect(lstatOf(root + "/d").map { $0.st_mode & 0o7777 } == 0o750)
        // A file replacing a directory removes the directory and what the manifest said was in it.
        #expect(fileText(root + "/gone") == "now a file")
        #expect(m.entry("gone/child") == nil)
        #expect(m.entry("gone")?.kind == .file)
        // A directory replacing a file.
        #expect(fileText(root + "/x/y") == "y")
        #expect(m.entry("x")?.kind == .directory)
        // Replacing one name of a hardlinked pair leaves the other's content alone.
        #expect(fileText(root + "/orig") == "shared")
        #expect(fileText(root + "/alias") == "replaced")
        #expect(m.entry("alias")?.kind == .file)
    }

    @Test func deviceNodesAreRecordedButNeverCreated() throws {
        let box = try Sandbox()
        try writeTar([
            .dir("dev/"),
            TarEntry(path: "dev/null", kind: .charDevice(1, 3), mode: 0o666),
            TarEntry(path: "dev/sda", kind: .blockDevice(8, 0), mode: 0o660),
        ], to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        let null = try #require(m.entry("dev/null"))
        #expect(null.kind == .charDevice)
        #expect(null.devMajor == 1 && null.devMinor == 3)
        #expect(m.entry("dev/sda")?.kind == .blockDevice)
        #expect(m.entry("dev/sda")?.devMajor == 8)
        #expect(m.skipReason("dev/null") == "device node not created: unprivileged")
        #expect(m.skipReason("dev/sda") == "device node not created: unprivileged")
        #expect(try FileIO.listDirectory(root + "/dev").isEmpty)
    }

    @Test func longNamesThroughPaxHeaders() throws {
        let box = try Sandbox()
        let dir = (0..<12).map { "component-number-\($0)" }.joined(separator: "/")
        let path = dir + "/" + String(repeating: "n", count: 200)
        try writeTar([.file(path, "deep"), .symlink("link", String(repeating: "t/", count: 80) + "end")],
                     to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(fileText(root + "/" + path) == "deep")
        #expect(m.entry(path)?.digest == (try sha256("deep")))
        #expect(m.entry("link")?.target == String(repeating: "t/", count: 80) + "end")
    }

    @Test func sparseFilesKeepTheirContentAndDigest() throws {
        let box = try Sandbox()
        // 8 MiB file: data at 1 MiB and at the end, holes elsewhere.
        let sparse = try writeSparseTar(in: box, size: 8 << 20, middle: 1 << 20)
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("sparse.tar"), into: root)
        let e = try #require(m.entry("sparse"))
        #expect(e.size == 8 << 20)
        let (digest, size) = try SHA256Hasher.hash(fileAt: sparse)
        #expect(e.digest == digest)
        #expect(size == 8 << 20)
        #expect((try SHA256Hasher.hash(fileAt: root + "/sparse")).0 == digest)
        #expect(m.diffID == (try sha256sum(box.path("sparse.tar"))))
    }

    @Test func truncatedGzipIsAClearError() throws {
        let box = try Sandbox()
        var entries = Self.sampleEntries
        // Incompressible content so that cutting the file in half cuts into the data.
        var rng = SystemRandomNumberGenerator()
        entries.append(TarEntry(path: "big", kind: .file((0..<200_000).map { _ in UInt8.random(in: 0...255, using: &rng) }),
                                mode: 0o644))
        try writeTar(entries, to: box.path("layer.tar.gz"), filter: .gzip)
        let whole = try FileIO.readFile(box.path("layer.tar.gz"))
        try box.write("cut.gz", Array(whole.prefix(whole.count / 2)))
        let root = try box.emptyDirectory("root")
        let error = #expect(throws: CASError.self) { try unpack(box.path("cut.gz"), into: root) }
        guard case .badLayer(let message)? = error else {
            Issue.record("expected badLayer, got \(String(describing: error))")
            return
        }
        #expect(message.contains(box.path("cut.gz")))
        #expect(message.contains("big"))
        #expect(message.lowercased().contains("truncated"))
    }

    @Test func corruptOrTruncatedTarIsAClearError() throws {
        let box = try Sandbox()
        try writeTar(Self.sampleEntries + [.file("last", String(repeating: "z", count: 5000))], to: box.path("layer.tar"))
        let whole = try FileIO.readFile(box.path("layer.tar"))
        // Cut in the middle of the last file's data. (A cut exactly between two entries looks like a tar
        // without its end marker, which libarchive, GNU tar and Docker all accept; the caller's diff_id
        // check catches that case.)
        let zs = Array(repeating: UInt8(ascii: "z"), count: 64)
        let dataStart = try #require((0..<whole.count - 64).first { Array(whole[$0..<$0 + 64]) == zs })
        let cut = dataStart + 1000
        try box.write("cut.tar", Array(whole.prefix(cut)))
        let error = #expect(throws: CASError.self) { try unpack(box.path("cut.tar"), into: try box.emptyDirectory("r1")) }
        if case .badLayer(let message)? = error {
            #expect(message.contains("'last'"))
        } else {
            Issue.record("expected badLayer, got \(String(describing: error))")
        }
        // Garbage is not a layer.
        try box.write("junk", Array(repeating: 0x41, count: 4096))
        #expect(throws: CASError.self) { try unpack(box.path("junk"), into: try box.emptyDirectory("r2")) }
        // A bad checksum in a header in the middle.
        var corrupt = whole
        let name = Array("etc/hostname".utf8) + [0]
        let header = try #require((0..<whole.count - name.count).first { Array(whole[$0..<$0 + name.count]) == name })
        corrupt[header + 148] ^= 0x5A  // that header's checksum field
        try box.write("corrupt.tar", corrupt)
        #expect(throws: CASError.self) { try unpack(box.path("corrupt.tar"), into: try box.emptyDirectory("r3")) }
        // Empty input.
        try box.write("empty", [])
        #expect(throws: CASError.self) { try unpack(box.path("empty"), into: try box.emptyDirectory("r4")) }
    }

    @Test func readsFromTheDescriptorsCurrentOffsetAndLeavesItOpen() throws {
        let box = try Sandbox()
        try writeTar([.file("a", "a")], to: box.path("layer.tar.gz"), filter: .gzip)
        let fd = open(box.path("layer.tar.gz"), O_RDONLY)
        defer { close(fd) }
        let m = try LayerUnpacker().unpack(fd: fd, sourceName: "layer", into: try box.emptyDirectory("root"))
        #expect(m.compression == "gzip")
        #expect(fcntl(fd, F_GETFD) >= 0)
    }

    @Test func outputLimitStopsALayerThatExpandsTooFar() throws {
        // 8 MiB of zeros gzip to a few KiB: with a 1 MiB limit the unpack fails, naming the limit.
        let box = try Sandbox()
        try writeTar([.file("zeros", String(repeating: "\0", count: 8 << 20))], to: box.path("bomb.tar.gz"), filter: .gzip)
        let fd = open(box.path("bomb.tar.gz"), O_RDONLY)
        defer { close(fd) }
        do {
            _ = try LayerUnpacker().unpack(fd: fd, sourceName: "bomb", into: try box.emptyDirectory("r1"), outputLimit: 1 << 20)
            Issue.record("a layer beyond the output limit was unpacked")
        } catch let e as CASError {
            #expect("\(e)".contains("expands to more than 1048576 bytes"), "\(e)")
        }
        #expect(lseek(fd, 0, SEEK_SET) == 0)
        let m = try LayerUnpacker().unpack(fd: fd, sourceName: "bomb", into: try box.emptyDirectory("r2"), outputLimit: 64 << 20)
        #expect(m.entries.contains { $0.path == "zeros" && $0.size == 8 << 20 })
    }

    @Test func normalisesPaths() {
        #expect(LayerPath.normalise("./a//b/./c/") == .path("a/b/c"))
        #expect(LayerPath.normalise("/etc/passwd") == .path("etc/passwd"))
        #expect(LayerPath.normalise("a/../b") == .path("b"))
        #expect(LayerPath.normalise("./") == .path(""))
        #expect(LayerPath.normalise("/") == .path(""))
        #expect(LayerPath.normalise("..") == .climbsOut)
        #expect(LayerPath.normalise("../x") == .climbsOut)
        #expect(LayerPath.normalise("a/../../x") == .climbsOut)
        #expect(LayerPath.normalise("/../x") == .climbsOut)
        #expect(LayerPath.normalise("a/b/../../c/..") == .path(""))
        // Names that are already normal apart from their ends, and look-alikes that are not.
        #expect(LayerPath.normalise("./usr/bin/") == .path("usr/bin"))
        #expect(LayerPath.normalise("//./a/.b/..c/...") == .path("a/.b/..c/..."))
        #expect(LayerPath.normalise("./.") == .path(""))
        #expect(LayerPath.normalise("./..") == .climbsOut)
        #expect(LayerPath.normalise("a/b/..") == .path("a"))
        #expect(LayerPath.normalise("a/./b") == .path("a/b"))
        #expect(LayerPath.normalise("caf\u{E9}/x") == .path("caf\u{E9}/x"))
        let latin1: [UInt8] = [0x61, 0x2F, 0xE9]
        #expect(latin1.withUnsafeBufferPointer { LayerPath.normalise($0) } == .notUTF8)
        #expect(LayerPath.split("a/b/c") == ("a/b", "c"))
        #expect(LayerPath.split("") == ("", ""))
        #expect(LayerPath.split("top") == ("", "top"))
    }
}
