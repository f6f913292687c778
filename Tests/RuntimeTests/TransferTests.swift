// The Transfer API (export, import, load, save) on a real repository and store: containers found
// only inside the repository, pending refs released on success and failure, verified layers in save.
import Testing
import CAS
import Foundation
import TestSupport
#if canImport(Glibc)
import Glibc
#endif
@testable import Runtime

@Suite struct TransferTests {
    private func setUp(_ t: borrowing TempDir) throws -> (Repository, ImageStore) {
        let repo = try Repository.create(at: t.path + "/repo").repository
        return (repo, try ImageStore(repository: repo, store: try repo.openStore()))
    }

    private func pendingHolders(_ store: Store) throws -> [String] {
        try store.refs().keys.filter { $0.hasPrefix("pending/") }.sorted()
    }

    /// A small rootfs tar: one directory, one file.
    private func rootfsTar() -> [UInt8] {
        var t = TarBuilder()
        t.directory("etc")
        t.file("etc/os-release", "ID=test\n")
        return t.archive
    }

    @Test func containerNamesResolveOnlyInsideTheRepository() throws {
        let t = TempDir("transfer")
        let (repo, _) = try setUp(t)
        let c = repo.containersdir
        try FileIO.mkdirs(c + "/1111/ROOT")
        try FileIO.mkdirs(t.path + "/elsewhere/ROOT")
        #expect(symlink("1111", c + "/good") == 0)
        #expect(symlink(t.path + "/elsewhere", c + "/abs") == 0)
        #expect(symlink("../../elsewhere", c + "/rel") == 0)

        #expect(try ContainerLocation.resolve("good", in: repo) == ContainerLocation(id: "1111", directory: c + "/1111"))
        #expect(try ContainerLocation.resolve("1111", in: repo).id == "1111")
        for bad in ["abs", "rel", "..", ".", "1111/ROOT", "", "missing"] {
            #expect(throws: RuntimeError.containerNotFound(bad)) { try ContainerLocation.resolve(bad, in: repo) }
        }
        // Export of a name pointing outside writes nothing.
        let out = t.path + "/out.tar"
        #expect(throws: RuntimeError.containerNotFound("abs")) {
            try ContainerExport.export("abs", repository: repo, to: out, clone: false)
        }
        #expect(!FileIO.exists(out))
    }

    @Test func importRecordsImageAndReleasesItsReservation() throws {
        let t = TempDir("transfer")
        let (repo, images) = try setUp(t)
        let tar = t.path + "/rootfs.tar"
        try Data(rootfsTar()).write(to: URL(fileURLWithPath: tar))
        let img = try ImageImport.run(ImportRequest(source: tar, image: "local/test:1", move: true), images: images)
        #expect(img.name == ImageName(name: "local/test", tag: "1"))
        #expect(!FileIO.exists(tar), "--mv removed the source")
        #expect(try pendingHolders(images.store).isEmpty)
        // The image's ref holds what its record names; the config says what was imported.
        let held = try #require(try images.store.ref(holder: images.holder(img.name)))
        #expect(Set(held) == Set(img.record.digests))
        let config = try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(images.store.blobPath(img.record.configDigest)))) as? [String: Any]
        #expect((config?["rootfs"] as? [String: Any])?["diff_ids"] as? [String] == [img.record.layers[0].diffID.description])
        #expect(config?["architecture"] as? String == img.record.platform.architecture && config?["os"] as? String == "linux")
        #expect(try images.store.layer(diffID: img.record.layers[0].diffID)?.entries.contains { $0.path == "etc/os-release" } == true)
        _ = repo
    }

    @Test func failedLoadRecordsNothingAndReleasesItsReservation() throws {
        let t = TempDir("transfer")
        let (_, images) = try setUp(t)
        // A config naming a diff_id the layer does not have.
        let layer = rootfsTar()
        let cfg = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:\#(String(repeating: "0", count: 64))"]}}"#.utf8)
        let cd = try sha256Digest(cfg)
        var a = TarBuilder()
        a.file("l/layer.tar", layer)
        a.file(cd.hex + ".json", cfg)
        a.file("manifest.json", #"[{"Config":"\#(cd.hex).json","RepoTags":["bad:1"],"Layers":["l/layer.tar"]}]"#)
        let path = t.path + "/bad.tar"
        try a.write(to: path)
        do {
            _ = try ImageLoad.run(LoadRequest(source: path), images: images)
            Issue.record("a layer that does not match its diff_id was loaded")
        } catch let e as RuntimeError {
            #expect("\(e)".contains("but the config says sha256:000"), "\(e)")
        }
        #expect(try images.images().isEmpty)
        #expect(try pendingHolders(images.store).isEmpty)
        // What it stored is unreferenced: GC takes it.
        #expect(try !images.store.gc(dryRun: true).removedBlobs.isEmpty)
    }

    @Test func saveRefusesALayerWhoseBlobNoLongerMatches() throws {
        let t = TempDir("transfer")
        let (_, images) = try setUp(t)
        let tar = t.path + "/rootfs.tar.gz"
        let gz = try runCommand("/bin/gzip", ["-c", "-n"], stdin: rootfsTar())
        try Data(gz).write(to: URL(fileURLWithPath: tar))
        let img = try ImageImport.run(ImportRequest(source: tar, image: "gz:1"), images: images)
        // A record whose diff_id is wrong (a damaged record or store): save must not write a layer.tar
        // that does not match the config it writes next to it.
        var rec = img.record
        rec.layers[0].diffID = try sha256Digest(Array("something else".utf8))
        try images.write(rec, as: ImageName(name: "gz", tag: "2"))
        let out = t.path + "/s.tar"
        #expect(throws: (any Error).self) { try ImageSave.run(SaveRequest(output: out, images: ["gz:2"]), images: images) }
        #expect(!FileIO.exists(out), "no half archive is left")
        try ImageSave.run(SaveRequest(output: out, images: ["gz:1"]), images: images)
        #expect(FileIO.exists(out))
        #expect(throws: RuntimeError.outputExists(out)) { try ImageSave.run(SaveRequest(output: out, images: ["gz:1"]), images: images) }
    }
}
