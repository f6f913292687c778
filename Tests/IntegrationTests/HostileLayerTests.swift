// Layers that are valid but odd, loaded and turned into containers through the binary: a sparse file
// that must stay sparse when copied (create, clone), a regular file named "/" that must not refuse the
// whole layer.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import TestSupport
import Testing

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct HostileLayerTests {
    /// Loads `layer` (an uncompressed tar) as image `name:tag`, in a Docker `save` archive.
    func load(_ r: ImageRepo, layer: [UInt8], as name: String, tag: String = "1") throws -> (status: Int32, stdout: String, stderr: String) {
        let layerDigest = try sha256Digest(layer)
        let config = Array(#"{"architecture":"\#(hostArchitecture())","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["\#(layerDigest)"]}}"#.utf8)
        let configDigest = try sha256Digest(config)
        var t = TarBuilder()
        t.file(configDigest.hex + ".json", config)
        t.directory("l1")
        t.file("l1/layer.tar", layer)
        t.file("manifest.json", #"[{"Config":"\#(configDigest.hex).json","RepoTags":["\#(name):\#(tag)"],"Layers":["l1/layer.tar"]}]"#)
        let archive = r.tmp + "/\(name).tar"
        try t.write(to: archive)
        return r.run(["load", "-i", archive])
    }

    func createdRoot(_ r: ImageRepo, _ args: [String]) throws -> String {
        let c = r.run(["create"] + args)
        #expect(c.status == 0, "\(c.stderr)")
        let id = c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        return r.repo + "/containers/" + id + "/ROOT"
    }

    @Test func sparseFilesStaySparseInCopiedContainers() throws {
        let r = try ImageRepo()
        // 1 GiB apparent, a few KiB of data at the start, the middle and the end; tar --sparse keeps it small.
        let work = r.tmp + "/sparse"
        try FileIO.mkdirs(work + "/data")
        let big = work + "/data/big"
        let gib: off_t = 1 << 30
        let fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        for offset in [0, gib / 2, gib - 4096] {
            let chunk = [UInt8](repeating: 0x5a, count: 4096)
            #expect(chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, offset) } == 4096)
        }
        _ = close(fd)
        _ = try runCommand("/bin/tar", ["--sparse", "--format=pax", "-C", work, "-cf", work + "/layer.tar", "data"])
        let layer = try FileIO.readFile(work + "/layer.tar")
        #expect(layer.count < 1 << 20, "the layer itself is small")
        try FileIO.removeTree(work + "/data")
        let loaded = try load(r, layer: layer, as: "sparse")
        #expect(loaded.status == 0, "\(loaded.stderr)")

        let copied = try createdRoot(r, ["--materialize=copy", "sparse:1"])
        let clone = r.run(["clone", String(copied.split(separator: "/").dropLast().last ?? "")])
        #expect(clone.status == 0, "\(clone.stderr)")
        let cloned = r.repo + "/containers/" + clone.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/ROOT"
        for (args, root) in [(["create", "--materialize=copy"], copied), (["create"], try createdRoot(r, ["sparse:1"])),
                             (["clone"], cloned)] {
            var st = stat()
            #expect(lstat(root + "/data/big", &st) == 0, "\(args)")
            #expect(st.st_size == gib, "\(args)")
            // Dense would be 2 Mi blocks of 512 bytes; the data is 12 KiB (a few file system blocks each).
            #expect(st.st_blocks < 2048, "\(args): \(st.st_blocks) blocks of 512 bytes allocated")
            let head = try FileIO.readFile(root + "/data/big").prefix(4097)
            #expect(head.prefix(4096).allSatisfy { $0 == 0x5a } && head.last == 0, "\(args)")
        }
    }

    @Test func aLayerWithARegularFileNamedSlashLoadsAndCreates() throws {
        let r = try ImageRepo()
        var layer = TarBuilder()
        layer.file("before", "first\n")
        layer.file("/", String(repeating: "data of a file named slash\n", count: 100))
        layer.file("after", "still unpacked\n")
        let loaded = try load(r, layer: layer.archive, as: "slash")
        #expect(loaded.status == 0, "\(loaded.stderr)")
        let c = r.run(["create", "--materialize=copy", "slash:1"])
        #expect(c.status == 0, "\(c.stderr)")
        let root = r.repo + "/containers/" + c.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + "/ROOT"
        #expect(String(decoding: try FileIO.readFile(root + "/after"), as: UTF8.self) == "still unpacked\n")
        #expect(String(decoding: try FileIO.readFile(root + "/before"), as: UTF8.self) == "first\n")
        let verify = r.run(["verify", "slash:1"])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }
}
