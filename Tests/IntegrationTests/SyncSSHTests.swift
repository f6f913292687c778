// `udocker sync` over a real ssh (Debian's sshd on loopback, key login of the test user to a second
// user): images there and back, what crosses the wire, a flipped byte, a far end without udocker.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(5)), .enabled(if: SSHPeer.shared != nil, "needs the test sshd of scripts/setup-host.sh"))
struct SyncSSHTests {
    /// The wrapper's count of bytes each way.
    func wire(_ file: String) -> (sent: Int64, received: Int64) {
        guard let bytes = try? FileIO.readFile(file),
              let o = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] else { return (-1, -1) }
        return ((o["sent"] as? NSNumber)?.int64Value ?? -1, (o["received"] as? NSNumber)?.int64Value ?? -1)
    }

    func storeBytes(_ repos: SyncRepos) throws -> Int64 {
        let dir = repos.source.store + "/blobs/sha256"
        var total: Int64 = 0
        for p in try FileIO.listDirectory(dir) {
            for b in try FileIO.listDirectory(dir + "/" + p) where !b.contains(".") {
                var st = stat()
                if lstat(dir + "/" + p + "/" + b, &st) == 0 { total += Int64(st.st_size) }
            }
        }
        return total
    }

    @Test func imagesGoThereAndBackAndTheSecondSyncSendsNoObjectBytes() throws {
        let peer = try #require(SSHPeer.shared)
        let repos = try SyncRepos(images: ["test/busybox:oci", "test/many:t00"], big: true)
        let remote = "sync-tests/repo-\(UInt32.random(in: 0...UInt32.max))"
        let url = peer.url(remote)
        let udocker = udockerBinaryPath()
        let count = repos.source.tmp + "/wire.json"

        let first = repos.sync(["--ssh=" + peer.wiredSSHCommand(countFile: count), "--remote-udocker=" + udocker, url])
        try #require(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("synced 3 image(s) and 0 container(s) to \(url)"), "\(first.stdout)")
        let blobBytes = try storeBytes(repos)
        let w1 = wire(count)
        // Each object once: the wire carries the blobs and a little framing and metadata.
        #expect(first.report["objectBytes"] == blobBytes, "\(first.report) blobs \(blobBytes)")
        #expect(w1.sent >= blobBytes && w1.sent < blobBytes + blobBytes / 50 + 65536, "\(w1) blobs \(blobBytes)")
        let listed = try peer.run("\(udocker) --repo=$HOME/\(remote) images")
        #expect(listed.status == 0 && listed.output.contains("test/busybox:oci") && listed.output.contains("test/big:1"), "\(listed.output)")
        let verify = try peer.run("\(udocker) --repo=$HOME/\(remote) store verify")
        #expect(verify.status == 0, "\(verify.output)")

        let second = repos.sync(["--ssh=" + peer.wiredSSHCommand(countFile: count), "--remote-udocker=" + udocker, url])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.report["objectsSent"] == 0 && second.report["objectBytes"] == 0, "\(second.report)")
        let w2 = wire(count)
        #expect(w2.sent + w2.received < 16384, "\(w2)")

        // And back, into a new repository here.
        let back = repos.source.tmp + "/back"
        let from = repos.run(["mkrepo", "--from=" + url, "--ssh=" + peer.sshCommand, "--remote-udocker=" + udocker, back])
        #expect(from.status == 0, "\(from.stderr)")
        #expect(Set(repos.images(back)) == Set(repos.images(repos.source.repo)), "\(from.stdout)")
        #expect(repos.on(back, ["store", "verify"]).status == 0)
    }

    /// Two repositories sync into one far repository that does not exist yet, at once: both create
    /// it, both land, each object is stored once and the far store verifies.
    @Test func twoSyncsIntoOneFarTargetAtOnceBothLand() throws {
        let peer = try #require(SSHPeer.shared)
        let a = try SyncRepos(images: ["test/busybox:oci", "test/many:t00"], big: true)
        let b = try SyncRepos(images: ["test/busybox:oci", "test/busybox:zstd"], big: false)
        let remote = "sync-tests/both-\(UInt32.random(in: 0...UInt32.max))"
        let udocker = udockerBinaryPath()
        let args = ["sync", "-q", "--ssh=" + peer.sshCommand, "--remote-udocker=" + udocker, peer.url(remote)]
        let pa = startUdocker(args, env: a.source.env.merging(["HOME": a.source.tmp]) { $1 })
        let pb = startUdocker(args, env: b.source.env.merging(["HOME": b.source.tmp]) { $1 })
        #expect(waitForExit(pa) == 0)
        #expect(waitForExit(pb) == 0)
        let listed = try peer.run("\(udocker) --repo=$HOME/\(remote) images")
        for n in ["test/busybox:oci", "test/busybox:zstd", "test/many:t00", "test/big:1"] {
            #expect(listed.output.contains(n), "\(n) missing: \(listed.output)")
        }
        let verify = try peer.run("\(udocker) --repo=$HOME/\(remote) store verify")
        #expect(verify.status == 0, "\(verify.output)")
        let temps = try peer.run("ls -A $HOME/\(remote)/store/tmp")
        #expect(temps.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "temp files left: \(temps.output)")
    }

    @Test func aFlippedByteIsRefusedAndLandsNothing() throws {
        let peer = try #require(SSHPeer.shared)
        let repos = try SyncRepos(images: ["test/busybox:oci"], big: true)
        let remote = "sync-tests/flip-\(UInt32.random(in: 0...UInt32.max))"
        let udocker = udockerBinaryPath()
        let count = repos.source.tmp + "/wire.json"
        let bad = repos.sync(["--ssh=" + peer.wiredSSHCommand(countFile: count, flipAfter: 3 << 20),
                              "--remote-udocker=" + udocker, peer.url(remote)])
        #expect(bad.status != 0, "\(bad.stdout)")
        #expect(bad.stderr.contains("check") || bad.stderr.contains("damaged") || bad.stderr.contains("CRC"), "\(bad.stderr)")
        let listed = try peer.run("\(udocker) --repo=$HOME/\(remote) images")
        #expect(!listed.output.contains("test/big:1") && !listed.output.contains("test/busybox:oci"), "\(listed.output)")
        let verify = try peer.run("\(udocker) --repo=$HOME/\(remote) store verify")
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test func aFarHostWithoutUdockerIsAClearError() throws {
        let peer = try #require(SSHPeer.shared)
        let repos = try SyncRepos(images: ["test/busybox:oci"], big: false)
        let r = repos.sync(["--ssh=" + peer.sshCommand, "--remote-udocker=/nonexistent/udocker", peer.url("sync-tests/none")])
        #expect(r.status == 1)
        #expect(r.stderr.contains("there is no udocker '/nonexistent/udocker'") && r.stderr.contains("--install-remote"), "\(r.stderr)")
        // --install-remote copies this binary there (once) and uses it.
        let remote = "sync-tests/installed-\(UInt32.random(in: 0...UInt32.max))"
        let installed = repos.sync(["--ssh=" + peer.sshCommand, "--install-remote", peer.url(remote)])
        #expect(installed.status == 0, "\(installed.stderr)")
        let there = try peer.run("$HOME/.cache/udocker/bin/udocker --repo=$HOME/\(remote) images")
        #expect(there.status == 0 && there.output.contains("test/busybox:oci"), "\(there.output)")
        let again = repos.sync(["--ssh=" + peer.sshCommand, "--install-remote", peer.url(remote)])
        #expect(again.status == 0 && again.report["objectsSent"] == 0, "\(again.stderr)")
    }

    @Test func sshThatCannotLogInIsAClearError() throws {
        let peer = try #require(SSHPeer.shared)
        let repos = try SyncRepos(images: ["test/busybox:oci"], big: false)
        let r = repos.sync(["--ssh=ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -i /nonexistent-key",
                            "ssh://nobody-here@127.0.0.1:\(peer.port)/~/repo"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("ssh could not reach ssh://nobody-here@127.0.0.1:\(peer.port)/~/repo"), "\(r.stderr)")
    }
}
