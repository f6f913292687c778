// export, import, load and save through the udocker binary: round trips, skopeo's acceptance of
// saved archives, Docker 25+ and OCI layouts, and hostile archives that must leave the host untouched.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for a repository with hand-made containers (create lives in another part of udocker).
extension ImageRepo {
    var containers: String { repo + "/containers" }

    /// Makes containers/<id> with udocker's files and a name symlink; returns ROOT.
    @discardableResult
    func makeContainer(_ id: String, name: String? = nil) throws -> String {
        if !FileIO.isDirectory(repo) { _ = run(["images"]) }
        let dir = containers + "/" + id
        try FileIO.mkdirs(dir + "/ROOT")
        try writeFile(dir + "/container.json", #"{"architecture":"amd64","config":{"Cmd":["/bin/sh"]}}"#)
        try writeFile(dir + "/imagerepo.name", "test/busybox:oci")
        try writeFile(dir + "/execmode", "P1")
        if let name { #expect(symlink(id, containers + "/" + name) == 0) }
        return dir + "/ROOT"
    }

    func sh(_ script: String) throws -> String {
        var env = self.env
        env["HOME"] = tmp
        env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        env["U"] = udockerBinaryPath() + (geteuid() == 0 ? " --allow-root" : "")
        return String(decoding: try runCommand("/bin/sh", ["-c", script], environment: env), as: UTF8.self)
    }

    /// A command's stdout without udocker's "Info:" lines (e.g. "creating repo").
    func results(_ out: String) -> String {
        out.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("Info:") }.joined(separator: "\n")
    }

    func imagesListed() -> [String] {
        run(["images"]).stdout.split(separator: "\n").dropFirst().map { String($0.split(separator: " ")[0]) }
    }

    func diffIDs(_ name: String, _ tag: String) throws -> [String] {
        let layers = try #require(try record(name, tag)["layers"] as? [[String: Any]])
        return layers.compactMap { $0["diffID"] as? String }
    }
}

/// A tree with what export must keep: modes (setuid, private, read-only), empty files, symlinks
/// (relative, absolute, dangling), hard links, a fifo, nested and empty directories.
func populateTree(_ root: String) throws {
    for (d, m) in [("bin", 0o755), ("etc", 0o755), ("secret", 0o700), ("usr/share/doc", 0o755), ("empty", 0o755), ("run", 0o755)] {
        try FileIO.mkdirs(root + "/" + d)
        _ = chmod(root + "/" + d, mode_t(m))
    }
    let files: [(String, String, Int)] = [
        ("bin/tool", "#!/bin/sh\necho tool\n", 0o755), ("bin/suid", "setuid program\n", 0o4755),
        ("etc/conf", "a=1\n", 0o644), ("etc/shadow", "root:*:1::::::\n", 0o600), ("etc/empty", "", 0o644), ("etc/gshadow", "root:*::\n", 0o000),
        ("secret/key", "k3y\n", 0o400), ("usr/share/doc/readme", String(repeating: "docs ", count: 50_000), 0o444),
    ]
    for (p, text, m) in files {
        try writeFile(root + "/" + p, text)
        _ = chmod(root + "/" + p, mode_t(m))
    }
    #expect(symlink("tool", root + "/bin/sh") == 0)
    #expect(symlink("usr/lib", root + "/lib") == 0)
    #expect(symlink("/etc/passwd", root + "/etc/abs") == 0)
    #expect(link(root + "/bin/tool", root + "/bin/tool2") == 0)
    #expect(link(root + "/etc/conf", root + "/etc/conf.hl") == 0)
    #expect(mkfifo(root + "/run/fifo", 0o644) == 0)
    // Fixed times so listings made at different moments compare equal.
    _ = try runCommand("/usr/bin/find", [root, "-mindepth", "1", "-exec", "touch", "-h", "-d", "2024-01-02 03:04:05", "{}", "+"])
}

/// `tar -tvf` of an archive, sorted, one line per entry.
func tarListing(_ path: String) throws -> [String] {
    String(decoding: try runCommand("/bin/tar", ["--numeric-owner", "-tvf", path]), as: UTF8.self)
        .split(separator: "\n").map(String.init).sorted()
}

/// sha256 of every regular file extracted from a tar (path -> digest).
func tarFileDigests(_ path: String, scratch: String) throws -> [String: String] {
    try FileIO.mkdirs(scratch)
    _ = try runCommand("/bin/tar", ["-xf", path, "-C", scratch])
    // Extracted modes may deny reading to the owner (mode 0000 files): the digests need the bytes.
    _ = try runCommand("/bin/chmod", ["-R", "u+rwX", scratch])
    let out = String(decoding: try runCommand("/bin/sh", ["-c", "cd '\(scratch)' && find . -type f -exec sha256sum {} +"]), as: UTF8.self)
    var d = [String: String]()
    for line in out.split(separator: "\n") {
        let parts = line.split(separator: " ", maxSplits: 1)
        if parts.count == 2 { d[String(parts[1]).trimmingCharacters(in: .whitespaces)] = String(parts[0]) }
    }
    return d
}

/// Makes a container ROOT from an image's single unpacked layer, as `create --materialize=copy`
/// would (copy, then the layer's recorded modes): the test's stand-in for create.
func materialize(_ r: ImageRepo, image: String, tag: String, into root: String) throws {
    let diffID = try #require(try r.diffIDs(image, tag).first)
    let layerDir = r.store + "/layers/sha256/" + String(diffID.dropFirst(7))
    _ = try runCommand("/bin/cp", ["-a", layerDir + "/root/.", root])
    let manifest = try #require(try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(layerDir + "/layer.json"))) as? [String: Any])
    for e in try #require(manifest["entries"] as? [[String: Any]]) {
        guard let p = e["path"] as? String, !p.isEmpty, let kind = e["kind"] as? String, ["f", "d", "p"].contains(kind),
              let mode = e["mode"] as? Int else { continue }
        #expect(chmod(root + "/" + p, mode_t(mode)) == 0, "chmod \(p)")
    }
}

@Suite struct TransferCommandTests {
    @Test func exportImportExportKeepsContentModesLinks() throws {
        let r = try ImageRepo()
        let root = try r.makeContainer("c0ffee00-0000-4000-8000-000000000001", name: "src")
        try populateTree(root)

        let e1 = r.tmp + "/e1.tar"
        let exp = r.run(["export", "-o", e1, "src"])
        #expect(exp.status == 0, "\(exp.stderr)")
        #expect(exp.stdout.contains("Info: exporting to file " + e1))
        let list1 = try tarListing(e1)
        #expect(list1.contains { $0.hasPrefix("-rwsr-xr-x 0/0") && $0.hasSuffix("bin/suid") }, "\(list1)")
        #expect(list1.contains { $0.hasPrefix("hrwxr-xr-x") && $0.contains("bin/tool2 link to bin/tool") }, "\(list1)")
        #expect(list1.contains { $0.hasPrefix("lrwxrwxrwx") && $0.hasSuffix("etc/abs -> /etc/passwd") }, "\(list1)")
        #expect(list1.contains { $0.hasPrefix("prw-r--r--") && $0.hasSuffix("run/fifo") }, "\(list1)")
        #expect(list1.contains { $0.hasPrefix("-r--------") && $0.hasSuffix("secret/key") }, "\(list1)")
        // Unreadable to its owner (as /etc/shadow is in some images): still exported, mode kept.
        #expect(list1.contains { $0.hasPrefix("---------- 0/0") && $0.hasSuffix("etc/gshadow") }, "\(list1)")
        var st = stat()
        #expect(stat(root + "/etc/gshadow", &st) == 0 && st.st_mode & 0o7777 == 0)

        let imp = r.run(["import", e1, "roundtrip:v1"])
        #expect(imp.status == 0, "\(imp.stderr)")
        #expect(r.imagesListed().contains("roundtrip:v1"))
        // The layer is the tar itself (uncompressed): its diff_id is the file's digest.
        let (tarDigest, _) = try SHA256Hasher.hash(fileAt: e1)
        #expect(try r.diffIDs("roundtrip", "v1") == [tarDigest.description])
        #expect(r.layerDirs.contains(tarDigest.hex))

        let root2 = try r.makeContainer("c0ffee00-0000-4000-8000-000000000002", name: "dst")
        try materialize(r, image: "roundtrip", tag: "v1", into: root2)
        let e2 = r.tmp + "/e2.tar"
        #expect(r.run(["export", "-o", e2, "dst"]).status == 0)
        #expect(try tarListing(e2) == list1)
        #expect(try tarFileDigests(e2, scratch: r.tmp + "/x2") == tarFileDigests(e1, scratch: r.tmp + "/x1"))
        // The same tar again: byte for byte (sorted entries, fixed owners).
        #expect(try SHA256Hasher.hash(fileAt: e2).0 == tarDigest)
    }

    @Test func exportToStdoutAndByIdAndCloneRoundTrip() throws {
        let r = try ImageRepo()
        let id = "c0ffee00-0000-4000-8000-000000000003"
        let root = try r.makeContainer(id, name: "orig")
        try populateTree(root)
        _ = try r.sh("$U export - \(id) > '\(r.tmp)/stdout.tar'")
        #expect(r.run(["export", "-o", r.tmp + "/file.tar", "orig"]).status == 0)
        #expect(try tarListing(r.tmp + "/stdout.tar") == tarListing(r.tmp + "/file.tar"))

        let clone = r.tmp + "/clone.tar"
        #expect(r.run(["export", "--clone", "-o", clone, "orig"]).status == 0)
        let cl = try tarListing(clone)
        #expect(cl.contains { $0.hasSuffix(" container.json") } && cl.contains { $0.hasSuffix(" imagerepo.name") }
                && cl.contains { $0.hasSuffix(" ROOT/bin/suid") }, "\(cl)")

        let imp = r.run(["import", "--clone", "--name=copy", clone])
        #expect(imp.status == 0, "\(imp.stderr)")
        let newID = imp.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(newID.count == 36 && newID != id, "\(imp.stdout)")
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink(r.containers + "/copy", &buf, 255)
        #expect(n > 0 && String(decoding: buf[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self) == newID)
        #expect(try String(decoding: FileIO.readFile(r.containers + "/" + newID + "/imagerepo.name"), as: UTF8.self) == "test/busybox:oci")
        #expect(r.run(["export", "-o", r.tmp + "/again.tar", "copy"]).status == 0)
        #expect(try tarListing(r.tmp + "/again.tar") == tarListing(r.tmp + "/file.tar"))

        // A taken name is refused before anything is made.
        let before = try FileIO.listDirectory(r.containers).sorted()
        let dup = r.run(["import", "--clone", "--name=copy", clone])
        #expect(dup.status == 1 && dup.stderr.contains("container name already exists: copy"), "\(dup.stderr)")
        #expect(try FileIO.listDirectory(r.containers).sorted() == before)
        // --tocontainer makes a container of a rootfs tar with no image: same content on export.
        let toc = r.run(["import", "--tocontainer", "--name=x", r.tmp + "/file.tar"])
        #expect(toc.status == 0, "\(toc.stderr)")
        let tocID = toc.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(decoding: FileIO.readFile(r.containers + "/" + tocID + "/imagerepo.name"), as: UTF8.self) == "IMPORTED:unknown")
        #expect(r.run(["export", "-o", r.tmp + "/toc.tar", "x"]).status == 0)
        #expect(try tarListing(r.tmp + "/toc.tar") == tarListing(r.tmp + "/file.tar"))
        #expect(r.run(["import", "--tocontainer", "--name=x", r.tmp + "/file.tar"]).stderr.contains("container name already exists: x"))
        #expect(r.run(["rm", "x"]).status == 0)
        #expect(!FileIO.exists(r.containers + "/" + tocID))
        #expect(r.run(["export", "-o", r.tmp + "/n.tar", "nosuch"]).stderr.contains("container not found: nosuch"))
    }

    @Test func importCompressedFromStdinAndMv() throws {
        let r = try ImageRepo()
        let root = try r.makeContainer("c0ffee00-0000-4000-8000-000000000004", name: "c")
        try populateTree(root)
        #expect(r.run(["export", "-o", r.tmp + "/c.tar", "c"]).status == 0)
        let gz = try runCommand("/bin/gzip", ["-c", r.tmp + "/c.tar"])
        let fromStdin = runUdocker(["import", "-", "gz:1"], env: r.env, stdin: gz)
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        let rec = try r.record("gz", "1")
        let layers = try #require(rec["layers"] as? [[String: Any]])
        #expect(layers.first?["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar+gzip")
        #expect(try r.diffIDs("gz", "1") == [try SHA256Hasher.hash(fileAt: r.tmp + "/c.tar").0.description])

        let zst = r.tmp + "/c.tar.zst"
        _ = try runCommand("/usr/bin/zstd", ["-q", r.tmp + "/c.tar", "-o", zst])
        let mv = r.run(["import", "--mv", "--platform=linux/arm64", zst, "zst:1"])
        #expect(mv.status == 0, "\(mv.stderr)")
        #expect(!FileIO.exists(zst), "--mv removes the source")
        let p = try #require(try r.record("zst", "1")["platform"] as? [String: Any])
        #expect(p["architecture"] as? String == "arm64")
        #expect(Set(r.imagesListed()).isSuperset(of: ["gz:1", "zst:1"]))

        // udocker refuses to import over an existing tag; a file that is no tar is refused.
        let again = r.run(["import", r.tmp + "/c.tar", "gz:1"])
        #expect(again.status == 1 && again.stderr.contains("already exists"), "\(again.stderr)")
        try writeFile(r.tmp + "/junk.tar", "this is not a tar archive at all, just text\n")
        let junk = r.run(["import", r.tmp + "/junk.tar", "junk:1"])
        #expect(junk.status == 1 && junk.stderr.contains("junk.tar"), "\(junk.stderr)")
        #expect(!r.imagesListed().contains("junk:1"))
    }

    @Test func saveDockerArchiveSkopeoAndLoadBack() throws {
        let r = try ImageRepo()
        for t in ["oci", "zstd", "docker"] { #expect(r.run(["pull", "test/busybox:" + t]).status == 0) }
        let before = try ["oci", "zstd", "docker"].map { (try r.record("test/busybox", $0)["configDigest"] as? String, try r.diffIDs("test/busybox", $0)) }

        let one = r.tmp + "/one.tar"
        let s1 = r.run(["save", "-o", one, "test/busybox:zstd"])
        #expect(s1.status == 0, "\(s1.stderr)")
        let inspect = try JSONSerialization.jsonObject(with: Data(try runCommand("/usr/bin/skopeo", ["inspect", "docker-archive:" + one]))) as? [String: Any]
        #expect(inspect?["Layers"] as? [String] == before[1].1, "skopeo sees the uncompressed layers by diff_id")
        let raw = try JSONSerialization.jsonObject(with: Data(try runCommand("/usr/bin/skopeo", ["inspect", "--config", "docker-archive:" + one]))) as? [String: Any]
        #expect((raw?["rootfs"] as? [String: Any])?["diff_ids"] as? [String] == before[1].1)

        let all = r.tmp + "/all.tar"
        #expect(r.run(["save", "-o", all, "test/busybox:oci", "test/busybox:zstd", "test/busybox:docker"]).status == 0)
        let again = r.run(["save", "-o", all, "test/busybox:oci"])
        #expect(again.status == 1 && again.stderr.contains("output file already exists"), "\(again.stderr)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(try runCommand("/bin/tar", ["-xOf", all, "manifest.json"]))) as? [[String: Any]])
        // One config for all three (same image), so one manifest entry with three tags.
        #expect(manifest.count == 1 && Set(manifest[0]["RepoTags"] as? [String] ?? []) == ["test/busybox:oci", "test/busybox:zstd", "test/busybox:docker"], "\(manifest)")

        for t in ["oci", "zstd", "docker"] { #expect(r.run(["rmi", "test/busybox:" + t]).status == 0) }
        let load = r.run(["load", "-i", all])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(Set(r.results(load.stdout).split(separator: "\n").map(String.init)) == ["test/busybox:oci", "test/busybox:zstd", "test/busybox:docker"], "\(load.stdout)")
        for (i, t) in ["oci", "zstd", "docker"].enumerated() {
            #expect(try r.record("test/busybox", t)["configDigest"] as? String == before[i].0)
            #expect(try r.diffIDs("test/busybox", t) == before[i].1)
        }
        let verify = r.run(["verify", "test/busybox:oci"])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    @Test func saveOCILayoutSkopeoAndLoadBack() throws {
        let r = try ImageRepo()
        #expect(r.run(["pull", "test/busybox:oci"]).status == 0)
        #expect(r.run(["pull", "test/busybox:docker"]).status == 0)
        let oci = r.tmp + "/oci.tar"
        let s = r.run(["save", "--format=oci", "-o", oci, "test/busybox:oci"])
        #expect(s.status == 0, "\(s.stderr)")
        let ins = try JSONSerialization.jsonObject(with: Data(try runCommand("/usr/bin/skopeo", ["inspect", "oci-archive:" + oci]))) as? [String: Any]
        let rec = try r.record("test/busybox", "oci")
        #expect(ins?["Digest"] as? String == rec["manifestDigest"] as? String, "the stored manifest, as pulled")

        let both = r.tmp + "/both.tar"
        #expect(r.run(["save", "--format=oci", "-o", both, "test/busybox:oci", "test/busybox:docker"]).status == 0)
        // The Docker v2 image gets an OCI manifest of the same config and layer blobs.
        let ins2 = try JSONSerialization.jsonObject(with: Data(try runCommand("/usr/bin/skopeo", ["inspect", "oci-archive:" + both + ":docker"]))) as? [String: Any]
        #expect(ins2?["Layers"] as? [String] == (try r.layerBlobs("test/busybox", "docker")).map { "sha256:" + $0 })
        let cfg2 = try JSONSerialization.jsonObject(with: Data(try runCommand("/usr/bin/skopeo", ["inspect", "--raw", "oci-archive:" + both + ":docker"]))) as? [String: Any]
        #expect((cfg2?["config"] as? [String: Any])?["digest"] as? String == (try r.record("test/busybox", "docker"))["configDigest"] as? String)

        let configs = try ["oci", "docker"].map { try r.record("test/busybox", $0)["configDigest"] as? String }
        for t in ["oci", "docker"] { #expect(r.run(["rmi", "test/busybox:" + t]).status == 0) }
        let load = r.run(["load", "-i", both])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(r.results(load.stdout) == "test/busybox:oci\ntest/busybox:docker\n", "\(load.stdout)")
        #expect(try ["oci", "docker"].map { try r.record("test/busybox", $0)["configDigest"] as? String } == configs)
        #expect(try r.record("test/busybox", "oci")["manifestDigest"] as? String == rec["manifestDigest"] as? String)
        // From standard input, renamed.
        let piped = runUdocker(["load", "mine/bb"], env: r.env, stdin: Array(try Data(contentsOf: URL(fileURLWithPath: oci))))
        #expect(piped.status == 0 && r.results(piped.stdout) == "mine/bb:oci\n", "\(piped.stdout) \(piped.stderr)")
    }

    /// udocker 1.3.17's rule for every command that makes an image name: a name that exists is never
    /// replaced. load skips such images (and fails when that leaves none), import and tag refuse, save
    /// refuses an existing file.
    @Test func anExistingImageNameIsNeverReplaced() throws {
        let r = try ImageRepo()
        for t in ["oci", "zstd", "docker"] { #expect(r.run(["-q", "pull", "test/busybox:" + t]).status == 0) }
        let both = r.tmp + "/both.tar"
        #expect(r.run(["save", "-o", both, "test/busybox:oci", "test/busybox:zstd"]).status == 0)
        let dockerManifest = try r.record("test/busybox", "docker")["manifestDigest"] as? String

        let none = r.run(["load", "-i", both])
        #expect(none.status == 1, "\(none.stdout)")
        #expect(none.stderr.hasPrefix("Error: nothing loaded: the archive's image(s) test/busybox:oci, test/busybox:zstd exist already"), "\(none.stderr)")
        #expect(r.results(none.stdout) == "", "no name is printed: \(none.stdout)")

        // test/busybox:oci now names other content (the docker image); zstd is gone.
        for t in ["oci", "zstd"] { #expect(r.run(["rmi", "test/busybox:" + t]).status == 0) }
        #expect(r.run(["tag", "test/busybox:docker", "test/busybox:oci"]).status == 0)
        let some = r.run(["load", "-i", both])
        #expect(some.status == 0, "\(some.stderr)")
        #expect(r.results(some.stdout) == "test/busybox:zstd\n", "\(some.stdout)")
        #expect(some.stdout.contains("Info: image test/busybox:oci exists already, not loaded"), "\(some.stdout)")
        #expect(try r.record("test/busybox", "oci")["manifestDigest"] as? String == dockerManifest, "not replaced")

        // import and tag refuse the name; save refuses an existing file.
        _ = try runCommand("/bin/tar", ["-C", r.tmp, "-cf", r.tmp + "/tree.tar", "both.tar"])
        let imp = r.run(["import", r.tmp + "/tree.tar", "test/busybox:oci"])
        #expect(imp.status == 1 && imp.stderr.contains("image test/busybox:oci already exists"), "\(imp.stderr)")
        let tag = r.run(["tag", "test/busybox:zstd", "test/busybox:oci"])
        #expect(tag.status == 1 && tag.stderr.contains("image test/busybox:oci already exists"), "\(tag.stderr)")
        #expect(try r.record("test/busybox", "oci")["manifestDigest"] as? String == dockerManifest)
        let save = r.run(["save", "-o", both, "test/busybox:oci"])
        #expect(save.status == 1 && save.stderr.contains("output file already exists"), "\(save.stderr)")

        // Unlike udocker 1.3.17, a protected image may be tagged (the new name is not protected).
        #expect(r.run(["protect", "test/busybox:zstd"]).status == 0)
        #expect(r.run(["tag", "test/busybox:zstd", "mine/zstd:1"]).status == 0)
        #expect(r.run(["images"]).stdout.contains("\nmine/zstd:1    .\n"))
    }

    @Test func loadOCILayoutWithTwoTags() throws {
        let r = try ImageRepo()
        let work = r.tmp + "/layout-work"
        try FileIO.mkdirs(work + "/root/bin")
        try writeFile(work + "/root/bin/hello", "hello\n")
        _ = try runCommand("/bin/tar", ["-C", work + "/root", "-cf", work + "/layer.tar", "bin"])
        let oci = try OCILayout(dir: work + "/layout")
        oci.tag(try oci.addImage(tar: work + "/layer.tar", compression: "gzip", arch: "amd64"), as: "one")
        oci.tag(try oci.addImage(tar: work + "/layer.tar", compression: "zstd", arch: "amd64"), as: "two")
        try oci.writeIndex()
        let archive = r.tmp + "/My_Layout.tar"
        _ = try runCommand("/bin/tar", ["-C", work + "/layout", "-cf", archive, "."])

        let load = r.run(["load", "-i", archive])
        #expect(load.status == 0, "\(load.stderr)")
        // Tag-only names take the archive's file name as the repository.
        #expect(r.results(load.stdout) == "my-layout:one\nmy-layout:two\n", "\(load.stdout)")
        let named = r.run(["load", "-i", archive, "site/tools"])
        #expect(r.results(named.stdout) == "site/tools:one\nsite/tools:two\n", "\(named.stdout) \(named.stderr)")
        let (diff, _) = try SHA256Hasher.hash(fileAt: work + "/layer.tar")
        #expect(try r.diffIDs("my-layout", "one") == [diff.description] && r.diffIDs("site/tools", "two") == [diff.description])
        #expect(r.layerDirs.contains(diff.hex))
    }

    @Test func loadDocker25ArchiveWithNestedIndexAndSymlinkedLayers() throws {
        let r = try ImageRepo()
        var layer = TarBuilder()
        layer.directory("bin")
        layer.file("bin/hello", "hello from docker 25\n", mode: 0o755)
        let layerBytes = layer.archive
        let layerDigest = try sha256Digest(layerBytes)
        let arch = hostArchitecture()
        let config = Array(#"{"architecture":"\#(arch)","os":"linux","config":{"Cmd":["/bin/hello"]},"rootfs":{"type":"layers","diff_ids":["\#(layerDigest)"]}}"#.utf8)
        let configDigest = try sha256Digest(config)
        let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(config.count)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(layerDigest)","size":\#(layerBytes.count)}]}"#.utf8)
        let manifestDigest = try sha256Digest(manifest)
        // The nested index also lists a platform and an attestation whose blobs are not in the archive.
        let missing = "sha256:" + String(repeating: "ab", count: 32)
        let nested = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(manifestDigest)","size":\#(manifest.count),"platform":{"architecture":"\#(arch)","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(missing)","size":10,"platform":{"architecture":"s390x","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(missing)","size":10,"platform":{"architecture":"unknown","os":"unknown"}}]}"#.utf8)
        let nestedDigest = try sha256Digest(nested)
        let index = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"\#(nestedDigest)","size":\#(nested.count),"annotations":{"io.containerd.image.name":"docker.io/library/hello:25","org.opencontainers.image.ref.name":"25"}}]}"#

        var t = TarBuilder()
        t.directory("blobs")
        t.directory("blobs/sha256")
        t.file("blobs/sha256/" + layerDigest.hex, layerBytes)
        t.file("blobs/sha256/" + configDigest.hex, config)
        t.file("blobs/sha256/" + manifestDigest.hex, manifest)
        t.file("blobs/sha256/" + nestedDigest.hex, nested)
        t.file("index.json", index)
        t.file("oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        t.directory("0123abcd")
        t.symlink("0123abcd/layer.tar", to: "../blobs/sha256/" + layerDigest.hex)
        t.file("manifest.json", #"[{"Config":"blobs/sha256/\#(configDigest.hex)","RepoTags":["hello:25"],"Layers":["0123abcd/layer.tar"]}]"#)
        let archive = r.tmp + "/d25.tar"
        try t.write(to: archive)

        let load = r.run(["load", "-i", archive])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(r.results(load.stdout) == "hello:25\n", "\(load.stdout)")
        let rec = try r.record("hello", "25")
        #expect(rec["indexDigest"] as? String == nestedDigest.description)
        #expect(rec["manifestDigest"] as? String == manifestDigest.description)
        #expect(try r.diffIDs("hello", "25") == [layerDigest.description])
        #expect(FileIO.exists(r.store + "/layers/sha256/" + layerDigest.hex + "/root/bin/hello"))

        // The same archive as an older Docker writes it (manifest.json only): the symlinked layer.tar resolves too.
        var legacy = TarBuilder()
        legacy.file("blobs/sha256/" + layerDigest.hex, layerBytes)
        legacy.file(configDigest.hex + ".json", config)
        legacy.directory("0123abcd")
        legacy.symlink("0123abcd/layer.tar", to: "../blobs/sha256/" + layerDigest.hex)
        legacy.file("manifest.json", #"[{"Config":"\#(configDigest.hex).json","RepoTags":["hello:old","hello:older"],"Layers":["0123abcd/layer.tar"]}]"#)
        try legacy.write(to: r.tmp + "/legacy.tar")
        let l2 = r.run(["load", "-i", r.tmp + "/legacy.tar"])
        #expect(l2.status == 0 && r.results(l2.stdout) == "hello:old\nhello:older\n", "\(l2.stdout) \(l2.stderr)")
        #expect(try r.record("hello", "old")["configDigest"] as? String == configDigest.description)
    }

    @Test func hostileArchivesLeaveHostUntouched() throws {
        let r = try ImageRepo()
        let outside = r.tmp + "/outside"
        try FileIO.mkdirs(outside)
        let passwdBefore = try FileIO.readFile("/etc/passwd")

        // A valid image plus entries climbing out and absolute ones: those are ignored (with a
        // warning), nothing is written anywhere by its name.
        var layer = TarBuilder()
        layer.file("ok", "fine\n")
        let lb = layer.archive
        let ld = try sha256Digest(lb)
        let cfg = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["\#(ld)"]}}"#.utf8)
        let cd = try sha256Digest(cfg)
        var t = TarBuilder()
        t.file("../../../../../../.." + outside + "/dotdot", "pwned")
        t.file(outside + "/absolute", "pwned")
        t.file("layer/../../escape", "pwned")
        t.symlink("evil", to: outside)
        t.file("evil/through-link", "pwned")
        t.file("L/layer.tar", lb)
        t.file(cd.hex + ".json", cfg)
        t.file("manifest.json", #"[{"Config":"\#(cd.hex).json","RepoTags":["ok:1"],"Layers":["L/layer.tar"]}]"#)
        try t.write(to: r.tmp + "/names.tar")
        let l1 = r.run(["load", "-i", r.tmp + "/names.tar"])
        #expect(l1.status == 0 && r.results(l1.stdout) == "ok:1\n", "\(l1.stdout) \(l1.stderr)")
        #expect(l1.stderr.contains("leads outside the archive"), "\(l1.stderr)")
        #expect(try FileIO.listDirectory(outside).isEmpty)

        // A layer that is a symlink to a host file, absolute or climbing out: refused, nothing recorded.
        for target in ["/etc/passwd", "../../../../../../../../etc/passwd", "../" + String(repeating: "x/../", count: 3) + "../etc/passwd"] {
            var h = TarBuilder()
            h.file(cd.hex + ".json", cfg)
            h.directory("L")
            h.symlink("L/layer.tar", to: target)
            h.file("manifest.json", #"[{"Config":"\#(cd.hex).json","RepoTags":["evil:1"],"Layers":["L/layer.tar"]}]"#)
            try h.write(to: r.tmp + "/link.tar")
            let l = r.run(["load", "-i", r.tmp + "/link.tar"])
            #expect(l.status == 1 && l.stderr.contains("outside the archive"), "\(target): \(l.stderr)")
            #expect(!r.imagesListed().contains("evil:1"))
        }
        // An OCI layout whose blob is a symlink to /etc/passwd, or whose content lies about its digest.
        var o = TarBuilder()
        o.file("oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        o.file("index.json", #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:\#(String(repeating: "cd", count: 32))","size":2}]}"#)
        o.directory("blobs/sha256")
        o.symlink("blobs/sha256/" + String(repeating: "cd", count: 32), to: "/etc/passwd")
        try o.write(to: r.tmp + "/oci-link.tar")
        let lo = r.run(["load", "-i", r.tmp + "/oci-link.tar"])
        #expect(lo.status == 1 && lo.stderr.contains("outside the archive"), "\(lo.stderr)")
        let liar = String(repeating: "ef", count: 32)
        var lie = TarBuilder()
        lie.file("blobs/sha256/" + liar, "not what the name says")
        lie.file("manifest.json", "[]")
        try lie.write(to: r.tmp + "/lie.tar")
        let ll = r.run(["load", "-i", r.tmp + "/lie.tar"])
        #expect(ll.status == 1 && ll.stderr.contains("does not match its digest"), "\(ll.stderr)")
        #expect(!r.blobFiles.contains(liar))

        // import --clone of a hostile tar: entries outside the new container are skipped.
        var c = TarBuilder()
        c.directory("ROOT")
        c.file("ROOT/fine", "fine")
        c.file("../../../../../../.." + outside + "/clone-dotdot", "pwned")
        c.symlink("ROOT/out", to: outside)
        c.file("ROOT/out/clone-through-link", "pwned")
        c.hardlink("ROOT/passwd", to: "/etc/passwd")
        try c.write(to: r.tmp + "/clone-evil.tar")
        let ic = r.run(["import", "--clone", r.tmp + "/clone-evil.tar"])
        #expect(ic.status == 0, "\(ic.stderr)")
        #expect(ic.stderr.contains("not imported"), "\(ic.stderr)")
        let id = ic.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(FileIO.exists(r.containers + "/" + id + "/ROOT/fine"))
        #expect(!FileIO.exists(r.containers + "/" + id + "/ROOT/passwd"))

        #expect(try FileIO.listDirectory(outside).isEmpty, "nothing was written outside")
        #expect(try FileIO.readFile("/etc/passwd") == passwdBefore)
        #expect(r.run(["verify", "ok:1"]).status == 0)
    }
}

/// The host's OCI architecture name (what `load` prefers from a multi-platform index).
func hostArchitecture() -> String {
    var u = utsname()
    _ = uname(&u)
    let m = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    switch m {
    case "x86_64": return "amd64"
    case "aarch64": return "arm64"
    default: return m
    }
}
