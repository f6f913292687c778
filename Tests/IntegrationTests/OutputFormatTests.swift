// What images, ps, inspect, store stats and the progress bars print: udocker 1.3.17's columns (whole
// image names, images -p, ps -s of the container's own files), --format=json, and bars that fit the terminal.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct OutputFormatTests {
    static let longName = "a-rather-long-namespace-for-images/and-an-even-longer-image-name-here:v1.2.3-with-a-tag"

    func pulled() throws -> ImageRepo {
        let r = try ImageRepo()
        let pull = r.run(["-q", "pull", "test/busybox:oci"])
        try #require(pull.status == 0, "\(pull.stderr)")
        return r
    }

    func json(_ out: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(out.utf8))
    }

    func createID(_ r: ImageRepo, _ args: [String]) throws -> String {
        let c = r.run(["create"] + args)
        try #require(c.status == 0, "\(c.stderr)")
        return c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: images

    @Test func imagesPrintsWholeNamesAndThePlatformWithP() throws {
        let r = try pulled()
        #expect(Self.longName.count > 60)
        #expect(r.run(["tag", "test/busybox:oci", Self.longName]).status == 0)
        #expect(r.run(["protect", Self.longName]).status == 0)
        let images = r.run(["images"])
        #expect(images.status == 0)
        // udocker 1.3.17: "%s    %c", sorted by name here.
        #expect(images.stdout == "REPOSITORY\n\(Self.longName)    P\ntest/busybox:oci    .\n", "\(images.stdout)")
        // -p: "%-18.18s %c %s" (platform, mark, name).
        let p = r.run(["images", "-p"])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout == "REPOSITORY\nlinux/amd64        P \(Self.longName)\nlinux/amd64        . test/busybox:oci\n", "\(p.stdout)")
        #expect(r.run(["-q", "images"]).stdout == "\(Self.longName)    P\ntest/busybox:oci    .\n")
    }

    @Test func imagesInJSON() throws {
        let r = try pulled()
        #expect(r.run(["tag", "test/busybox:oci", Self.longName]).status == 0)
        let out = r.run(["images", "--format=json"])
        #expect(out.status == 0 && out.stderr == "", "\(out.stderr)")
        let list = try #require(try json(out.stdout) as? [[String: Any]], "\(out.stdout)")
        #expect(list.map { $0["name"] as? String } == [Self.longName, "test/busybox:oci"])
        let img = list[1]
        #expect(Set(img.keys) == ["name", "tag", "protected", "platform", "directory", "source", "manifestDigest",
                                  "manifestMediaType", "indexDigest", "configDigest", "recorded", "size", "layers"])
        let rec = try r.record("test/busybox", "oci")
        #expect(img["tag"] as? String == "oci" && img["protected"] as? Bool == false && img["platform"] as? String == "linux/amd64")
        #expect(img["directory"] as? String == r.repo + "/repos/test/busybox/oci")
        #expect(img["manifestDigest"] as? String == rec["manifestDigest"] as? String)
        #expect(img["configDigest"] as? String == rec["configDigest"] as? String)
        #expect(img["indexDigest"] is NSNull)
        let source = try #require(img["source"] as? [String: Any])
        #expect(source["repository"] as? String == "test/busybox")
        let layers = try #require(img["layers"] as? [[String: Any]])
        #expect(layers.count == 1 && Set(layers[0].keys) == ["digest", "diffID", "mediaType", "size"])
        let blob = try r.layerBlobs("test/busybox", "oci")[0]
        #expect(layers[0]["digest"] as? String == "sha256:" + blob)
        #expect((img["size"] as? Int ?? 0) > 500_000)
        // An empty repository is an empty list; a new repository's "creating repo" goes to stderr.
        let fresh = try ImageRepo()
        let empty = fresh.run(["images", "--format=json"])
        let emptyList = try json(empty.stdout) as? [Any]
        #expect(empty.status == 0 && emptyList?.isEmpty == true, "\(empty.stdout)")
        #expect(empty.stderr.hasPrefix("Info: creating repo"), "\(empty.stderr)")
        let bad = r.run(["images", "--format=yaml"])
        #expect(bad.status == 1 && bad.stderr.contains("--format=json"), "\(bad.stderr)")
    }

    // MARK: ps

    @Test func psInJSONAndInspectInJSON() throws {
        let r = try pulled()
        let id = try createID(r, ["--name=web", "test/busybox:oci"])
        let out = r.run(["ps", "--format=json"])
        #expect(out.status == 0 && out.stderr == "", "\(out.stderr)")
        let list = try #require(try json(out.stdout) as? [[String: Any]], "\(out.stdout)")
        #expect(list.count == 1)
        let c = list[0]
        #expect(Set(c.keys) == ["id", "names", "image", "imagePresent", "protected", "directory", "root", "rootState",
                                "execMode", "platform", "materialize", "ownBytes", "sharedBytes"])
        #expect(c["id"] as? String == id && c["names"] as? [String] == ["web"] && c["image"] as? String == "test/busybox:oci")
        #expect(c["imagePresent"] as? Bool == true && c["protected"] as? Bool == false)
        #expect(c["root"] as? String == r.repo + "/containers/\(id)/ROOT" && c["rootState"] as? String == "writable")
        #expect(c["execMode"] as? String == "P1" && c["platform"] as? String == "linux/amd64" && c["materialize"] as? String == "auto")
        #expect(c["ownBytes"] is NSNull && c["sharedBytes"] is NSNull, "sizes only with -s")

        // inspect --format=json: the same fields, the kind, and the config.
        let ic = r.run(["inspect", "--format=json", "web"])
        #expect(ic.status == 0, "\(ic.stderr)")
        let doc = try #require(try json(ic.stdout) as? [String: Any])
        #expect(doc["kind"] as? String == "container" && doc["id"] as? String == id)
        #expect(((doc["config"] as? [String: Any])?["architecture"]) as? String == "amd64")
        let ii = r.run(["inspect", "--format=json", "test/busybox:oci"])
        let idoc = try #require(try json(ii.stdout) as? [String: Any], "\(ii.stdout)\(ii.stderr)")
        #expect(idoc["kind"] as? String == "image" && idoc["name"] as? String == "test/busybox:oci")
        #expect(((idoc["config"] as? [String: Any])?["rootfs"] as? [String: Any])?["type"] as? String == "layers")
        let both = r.run(["inspect", "-p", "--format=json", "web"])
        #expect(both.status == 1 && both.stderr.contains("\"root\""), "\(both.stderr)")

        // After rmi the container keeps the image's name (as udocker's ps shows it), imagePresent says it is gone.
        #expect(r.run(["rmi", "test/busybox:oci"]).status == 0)
        let after = try #require(try json(r.run(["ps", "--format=json"]).stdout) as? [[String: Any]])
        #expect(after.first?["image"] as? String == "test/busybox:oci" && after.first?["imagePresent"] as? Bool == false)
    }

    @Test func psSizeIsWhatTheContainerHasBeyondTheStore() throws {
        let r = try pulled()
        let linked = try createID(r, ["--name=linked", "--materialize=link", "test/busybox:oci"])
        let copied = try createID(r, ["--name=copied", "--materialize=copy", "test/busybox:oci"])
        let busybox = UInt64(try #require(lstatSize(r.repo + "/containers/\(copied)/ROOT/bin/busybox")))
        #expect(busybox > 1_000_000)

        func sizes() throws -> [String: (own: UInt64, shared: UInt64)] {
            let out = r.run(["ps", "-s", "--format=json"])
            let list = try #require(try json(out.stdout) as? [[String: Any]], "\(out.stdout)\(out.stderr)")
            var d = [String: (UInt64, UInt64)]()
            for c in list {
                d[(c["names"] as? [String])?.first ?? ""] = (UInt64(c["ownBytes"] as? Int ?? -1), UInt64(c["sharedBytes"] as? Int ?? -1))
            }
            return d
        }
        var s = try sizes()
        let l = try #require(s["linked"]), c = try #require(s["copied"])
        #expect(l.own < busybox / 4 && l.shared >= busybox, "a linked busybox is the store's: \(l)")
        #expect(c.own >= busybox && c.shared == 0, "a copied busybox is the container's: \(c)")

        // The text column is udocker's (MB, rounded up, right-aligned in 5 columns): 1 for the linked
        // container (its directories), 2 for the copy (du would say 2 for both).
        func column() -> [String: String] {
            var d = [String: String]()
            for line in r.run(["ps", "-s"]).stdout.split(separator: "\n").dropFirst() {
                let chars = Array(line)
                d[String(chars[0..<36])] = String(chars[41..<46])
            }
            return d
        }
        #expect(r.run(["ps", "-s"]).stdout.hasPrefix("CONTAINER ID".padding(toLength: 36, withPad: " ", startingAt: 0) + " P M SIZE NAMES"))
        #expect(column() == [linked: "    1", copied: "    2"], "\(r.run(["ps", "-s"]).stdout)")

        // 3 MiB written in the linked container are its own; the store's files stay shared.
        try FileIO.writeAtomically(r.repo + "/containers/\(linked)/ROOT/data", [UInt8](repeating: 7, count: 3 << 20))
        s = try sizes()
        let l2 = try #require(s["linked"])
        #expect(l2.own >= l.own + (3 << 20) && l2.shared == l.shared, "\(l2)")
        #expect(column()[linked] == "    4")
        // A hard link inside the container to its own file is still its own (all links are inside ROOT).
        #expect(link(r.repo + "/containers/\(linked)/ROOT/data", r.repo + "/containers/\(linked)/ROOT/data2") == 0)
        let l3 = try #require(try sizes()["linked"])
        #expect(l3.own == l2.own && l3.shared == l2.shared, "\(l3)")

        // A container without ROOT: -1, as udocker prints when du fails.
        let root = r.repo + "/containers/\(copied)/ROOT"
        #expect(rename(root, root + ".away") == 0)
        #expect(column()[copied] == "   -1")
        #expect(rename(root + ".away", root) == 0)
    }

    func lstatSize(_ p: String) -> Int? {
        var st = stat()
        return lstat(p, &st) == 0 ? Int(st.st_size) : nil
    }

    // MARK: store stats

    @Test func storeStatsSaysWhatTheRepositoryCostsOnDisk() throws {
        let r = try pulled()
        _ = try createID(r, ["--name=copied", "--materialize=copy", "test/busybox:oci"])
        _ = try createID(r, ["--name=linked", "--materialize=link", "test/busybox:oci"])
        let out = r.run(["store", "stats"])
        #expect(out.status == 0, "\(out.stderr)")
        let lines = out.stdout.split(separator: "\n").map(String.init)
        let store = try #require(lines.first { $0.hasPrefix("store on disk: ") }, "\(out.stdout)")
        #expect(store.contains("(blobs ") && store.contains(", unpacked layers ") && store.contains(", index "), "\(store)")
        let containers = try #require(lines.first { $0.hasPrefix("containers: 2 (own files ") }, "\(out.stdout)")
        // The copied busybox (1.9 MB) is the containers' own; the linked one is counted in the layers.
        #expect(containers.hasSuffix(" MB on disk)"), "\(containers)")
        let total = try #require(lines.first { $0.hasPrefix("repository on disk: ") }, "\(out.stdout)")
        let mb = Double(total.dropFirst("repository on disk: ".count).split(separator: " ").first ?? "") ?? 0
        #expect(mb > 4 && mb < 8, "busybox blob (about 1 MB), layer (1.9 MB) and the copy (1.9 MB): \(total)")
    }

    // MARK: progress bars

    /// `udocker pull` on a terminal of `columns` columns (script(1) gives it one); the lines it drew.
    func barsOnATerminal(columns: Int, env extra: [String: String] = [:], sttyColumns: Int? = nil) throws -> [String] {
        let r = try ImageRepo()
        let home = makeTempDirectory("home")
        defer { try? FileIO.removeTree(home) }
        var env = r.env.merging(extra) { $1 }
        env["HOME"] = home
        env["PATH"] = "/usr/bin:/bin"
        env["UDOCKER_NOSYSCONF"] = "1"
        let root = geteuid() == 0 ? " --allow-root" : ""
        let cmd = "stty cols \(sttyColumns ?? columns) rows 40; exec " + udockerBinaryPath() + root + " pull test/busybox:oci"
        let out = spawnAndCollect(["/usr/bin/script", "-qec", cmd, "/dev/null"], environment: env, stdin: nil)
        try #require(out.status == 0, "\(out.stdout)\(out.stderr)")
        // What stays on screen of each line: the text after its last carriage return, escapes removed.
        let esc = try NSRegularExpression(pattern: "\u{1B}\\[[0-9]*[A-Za-z]")
        // The terminal ends lines with "\r\n" (one Character in Swift: split the scalars).
        return out.stdout.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n").compactMap { line in
            let last = line.components(separatedBy: "\r").last(where: { !$0.isEmpty }) ?? ""
            let plain = esc.stringByReplacingMatches(in: last, range: NSRange(last.startIndex..., in: last), withTemplate: "")
            return plain.isEmpty ? nil : plain
        }
    }

    /// A progress line: "total …", or a layer's "sha256:<hex>…" or "<12 hex> …".
    func isBar(_ line: String) -> Bool {
        line.hasPrefix("total") || line.hasPrefix("sha256:")
            || line.prefix(12).allSatisfy { $0.isHexDigit } && line.count > 12 && Array(line)[12] == " "
    }

    @Test(.enabled(if: FileIO.exists("/usr/bin/script") && FileIO.exists("/usr/bin/stty"), "needs script and stty for a terminal"),
          arguments: [80, 60, 40, 30])
    func progressBarsFitTheTerminal(columns: Int) throws {
        let lines = try barsOnATerminal(columns: columns)
        let bars = lines.filter(isBar)
        #expect(bars.contains { $0.hasPrefix("total") }, "\(lines)")
        for l in bars { #expect(l.count < columns, "\(l.count) columns on a \(columns)-column terminal: '\(l)'") }
        if columns >= 40 { #expect(bars.allSatisfy { $0.contains(" [") && $0.contains("]") }, "a bar on every line: \(bars)") }
        // The bars line up, and stay put from one drawing to the next.
        let closing = Set(bars.map { Array($0).firstIndex(of: "]") ?? -1 })
        #expect(closing.count == 1 || columns < 40, "\(bars)")
        if columns >= 80 { #expect(bars.contains { $0.hasPrefix("sha256:") && $0.contains("[=========================]") }, "\(bars)") }
    }

    @Test(.enabled(if: FileIO.exists("/usr/bin/script") && FileIO.exists("/usr/bin/stty"), "needs script and stty for a terminal"))
    func progressBarsFollowCOLUMNS() throws {
        let lines = try barsOnATerminal(columns: 50, env: ["COLUMNS": "50"], sttyColumns: 200)
        let bars = lines.filter(isBar)
        #expect(!bars.isEmpty, "\(lines)")
        for l in bars { #expect(l.count < 50, "'\(l)'") }
    }
}
