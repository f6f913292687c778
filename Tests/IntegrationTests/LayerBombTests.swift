// A layer that expands far beyond its size (a gzip bomb) stops at max_layer_expansion times its
// blob's size (at least 256 MiB) in pull, import and load instead of filling the disk; the key lets a
// real one through.
import TestSupport
import Testing
import CAS
import Foundation

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct LayerBombTests {
    @Test func aGzipBombStopsAtTheExpansionLimit() throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let work = makeTempDirectory("bomb")
        defer { try? FileIO.removeTree(work) }
        // 300 MiB of zeros: gzip makes about 300 KiB of it, a thousandfold.
        try FileIO.mkdirs(work + "/tree")
        _ = try runCommand("/usr/bin/truncate", ["-s", "300M", work + "/tree/zeros"])
        _ = try runCommand("/bin/tar", ["-C", work + "/tree", "-cf", work + "/bomb.tar", "zeros"])
        try FileIO.removeTree(work + "/tree")
        try registry.pushImage(tar: work + "/bomb.tar", as: "test/bomb", tag: "1", work: work)
        try Data(try runCommand("/bin/gzip", ["-1", "-c", work + "/bomb.tar"])).write(to: URL(fileURLWithPath: work + "/bomb.tgz"))
        try FileIO.removeTree(work + "/bomb.tar")

        let env = ["UDOCKER_DIR": work + "/repo", "UDOCKER_REGISTRY": registry.url]
        let refused = runUdocker(["pull", "test/bomb:1"], env: env, killAfter: 120)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("max_layer_expansion") && refused.stderr.contains("200 times"), "\(refused.stderr)")
        #expect(runUdocker(["images"], env: env).stdout.contains("test/bomb") == false)
        let layers = (try? FileIO.listDirectory(work + "/repo/store/layers/sha256")) ?? []
        #expect(layers.isEmpty, "nothing of the layer is kept: \(layers)")

        // import (and load) of such a layer meet the same bound.
        let imported = runUdocker(["import", work + "/bomb.tgz", "mine/bomb:1"], env: env, killAfter: 120)
        #expect(imported.status == 1 && imported.stderr.contains("max_layer_expansion"), "\(imported.stderr)")
        #expect(runUdocker(["images"], env: env).stdout.contains("mine/bomb") == false)

        let raised = env.merging(["UDOCKER_MAX_LAYER_EXPANSION": "5000"]) { $1 }
        let allowed = runUdocker(["pull", "test/bomb:1"], env: raised, killAfter: 120)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(runUdocker(["import", work + "/bomb.tgz", "mine/bomb:1"], env: raised, killAfter: 120).status == 0)
    }

    @Test func loadOfADockerSaveArchiveWithABombLayerIsRefused() throws {
        let work = makeTempDirectory("bomb-load")
        defer { try? FileIO.removeTree(work) }
        // A docker-save archive whose layer.tar is a gzip bomb (300 MiB of zeros in about 300 KiB).
        try FileIO.mkdirs(work + "/tree")
        _ = try runCommand("/usr/bin/truncate", ["-s", "300M", work + "/tree/zeros"])
        _ = try runCommand("/bin/tar", ["-C", work + "/tree", "-cf", work + "/bomb.tar", "zeros"])
        try FileIO.removeTree(work + "/tree")
        let diffID = String(decoding: try runCommand("/usr/bin/sha256sum", [work + "/bomb.tar"]), as: UTF8.self).prefix(64)
        try FileIO.mkdirs(work + "/archive/bomb")
        try Data(try runCommand("/bin/gzip", ["-1", "-c", work + "/bomb.tar"])).write(to: URL(fileURLWithPath: work + "/archive/bomb/layer.tar"))
        try FileIO.removeTree(work + "/bomb.tar")
        try writeFile(work + "/archive/cfg.json",
                      #"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:\#(diffID)"]}}"#)
        try writeFile(work + "/archive/manifest.json", #"[{"Config":"cfg.json","RepoTags":["mine/bombload:1"],"Layers":["bomb/layer.tar"]}]"#)
        _ = try runCommand("/bin/tar", ["-C", work + "/archive", "-cf", work + "/bomb-save.tar", "manifest.json", "cfg.json", "bomb"])

        let env = ["UDOCKER_DIR": work + "/repo"]
        let refused = runUdocker(["load", "-i", work + "/bomb-save.tar"], env: env, killAfter: 120)
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("max_layer_expansion") && refused.stderr.contains("200 times"), "\(refused.stderr)")
        #expect(runUdocker(["images"], env: env).stdout.contains("mine/bombload") == false)
        let layers = (try? FileIO.listDirectory(work + "/repo/store/layers/sha256")) ?? []
        #expect(layers.isEmpty, "nothing of the layer is kept: \(layers)")

        let allowed = runUdocker(["load", "-i", work + "/bomb-save.tar"], env: env.merging(["UDOCKER_MAX_LAYER_EXPANSION": "5000"]) { $1 },
                                 killAfter: 120)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(runUdocker(["images"], env: env).stdout.contains("mine/bombload:1"))
    }
}
