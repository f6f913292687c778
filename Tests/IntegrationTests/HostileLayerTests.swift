// Layers that are valid but odd, loaded and turned into containers through the binary: a regular file
// named "/" that must not refuse the whole layer.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import TestSupport
import Testing

@Suite struct HostileLayerTests {
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
