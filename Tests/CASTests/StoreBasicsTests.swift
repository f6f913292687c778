// Store creation and opening, blob ingest (dedup, concurrency, mismatch), refs, stats and the
// network-filesystem decision, as a user of the store sees them.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

@Suite("Store basics")
struct StoreBasicsTests {
    @Test func createIsIdempotentAndOpenChecksTheDirectory() throws {
        let dir = try TempDir()
        let a = try Store.create(at: dir.path + "/store")
        let b = try Store.create(at: dir.path + "/store")
        #expect(a.id == b.id)
        #expect(FileIO.isDirectory(dir.path + "/store/blobs/sha256"))
        #expect(FileIO.isDirectory(dir.path + "/store/index"))

        try FileIO.mkdirs(dir.path + "/plain")
        #expect(throws: CASError.notAStore(dir.path + "/plain")) { try Store.open(at: dir.path + "/plain") }

        try FileIO.mkdirs(dir.path + "/future")
        try writeFile(dir.path + "/future/store.json", Array(#"{"format": 7, "id": "x"}"#.utf8))
        #expect(throws: CASError.unsupportedFormat(dir.path + "/future", 7)) { try Store.open(at: dir.path + "/future") }
    }

    @Test func ingestStoresReadOnlyBlobAndDeduplicates() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let content = randomBytes(3 << 20)
        try writeFile(dir.path + "/input", content)
        let r = try store.ingest(fileAt: dir.path + "/input", mediaType: "application/vnd.oci.image.layer.v1.tar+gzip")
        #expect(r.digest == (try sha(content)))
        #expect(r.size == UInt64(content.count))
        #expect(r.mediaType == "application/vnd.oci.image.layer.v1.tar+gzip")
        #expect(fileMode(store.blobPath(r.digest)) == 0o444)
        #expect(try FileIO.readFile(store.blobPath(r.digest)) == content)

        // Known digest: no read at all (the source path does not even exist).
        let again = try store.ingest(fileAt: dir.path + "/no-such-file", expected: r.digest)
        #expect(again == r)
        // Unknown digest, same content: stored once.
        let third = try store.ingest(bytes: content)
        #expect(third.digest == r.digest)
        #expect(blobFiles(store) == [r.digest.hex])
        #expect(list(store.layout.tmpDir).isEmpty)
        #expect(try store.blobRecord(r.digest) == r)
        #expect(store.hasBlob(r.digest))
    }

    @Test func eightThreadsIngestingTheSameBlobAllSucceedWithOneCopy() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let content = randomBytes(2 << 20)
        let expected = try sha(content)
        let results = Results()
        let group = DispatchGroup()
        let gate = DispatchSemaphore(value: 0)
        for _ in 0..<8 {
            group.enter()
            let t = Thread {
                gate.wait()
                do {
                    // Stream in small pieces so the writers really overlap.
                    let w = try store.beginBlob(expected: expected, mediaType: "x/y")
                    var off = 0
                    while off < content.count {
                        let n = min(64 << 10, content.count - off)
                        try content[off..<off + n].withUnsafeBytes { try w.write($0) }
                        off += n
                    }
                    results.add(.success(try w.commit()))
                } catch {
                    results.add(.failure(error))
                }
                group.leave()
            }
            t.start()
        }
        for _ in 0..<8 { gate.signal() }
        group.wait()
        let all = results.all
        #expect(all.count == 8)
        for r in all {
            let rec = try r.get()
            #expect(rec.digest == expected)
            #expect(rec.size == UInt64(content.count))
        }
        #expect(blobFiles(store) == [expected.hex])
        #expect(list(store.layout.tmpDir).isEmpty)
        #expect(try FileIO.readFile(store.blobPath(expected)) == content)
    }

    @Test func wrongDigestLeavesNothingBehind() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let content = randomBytes(100_000)
        let claimed = try sha(Array("something else".utf8))
        do {
            _ = try store.ingest(bytes: content, expected: claimed)
            Issue.record("a blob with the wrong digest was accepted")
        } catch let e as CASError {
            #expect(e == .digestMismatch(expected: claimed, actual: try sha(content)))
            #expect(e.description.contains(claimed.description))
            #expect(e.description.contains(try sha(content).description))
        }
        try writeFile(dir.path + "/input", content)
        let fd = try FileIO.open(dir.path + "/input", O_RDONLY)
        defer { _ = close(fd) }
        #expect(throws: CASError.self) {
            try store.ingest(fd: fd, expected: try sha(content), expectedSize: 10)
        }
        // Size announced without a digest: checked at commit, the message names the content's digest.
        let w = try store.beginBlob(expectedSize: 99)
        try w.write(content)
        #expect(throws: CASError.sizeMismatch(expected: 99, actual: UInt64(content.count), digest: try sha(content))) {
            try w.commit()
        }
        #expect(blobFiles(store).isEmpty)
        #expect(list(store.layout.tmpDir).isEmpty)
        #expect(try store.blobs().isEmpty)
    }

    @Test func abortedWriterLeavesNothing() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        do {
            let w = try store.beginBlob()
            try w.write(randomBytes(1000))
            #expect(list(store.layout.tmpDir).count == 1)
            w.abort()
        }
        do {
            let w = try store.beginBlob()
            try w.write(randomBytes(1000))
            // Dropped without commit.
        }
        #expect(list(store.layout.tmpDir).isEmpty)
        #expect(blobFiles(store).isEmpty)
    }

    @Test func refsSurviveReopenAndCountHolders() throws {
        let dir = try TempDir()
        let a = try sha([1]), b = try sha([2]), c = try sha([3])
        do {
            let store = try Store.create(at: dir.path)
            try store.setRef(holder: "repo/0f1e/image/busybox:latest", digests: [a, b])
            try store.setRef(holder: "repo/0f1e/container/1234", digests: [b, c, c])
            try store.setRef(holder: "repo/0f1e/image/alpine:3", digests: [a])
            try store.removeRef(holder: "repo/0f1e/image/alpine:3")
            try store.removeRef(holder: "repo/0f1e/image/never-existed")
            #expect(throws: CASError.self) { try store.setRef(holder: "../evil", digests: [a]) }
            #expect(throws: CASError.self) { try store.setRef(holder: "a//b", digests: [a]) }
            #expect(throws: CASError.self) { try store.setRef(holder: "a b", digests: [a]) }
        }
        let store = try Store.open(at: dir.path)
        let refs = try store.refs()
        #expect(refs == ["repo/0f1e/image/busybox:latest": [a, b].sorted(), "repo/0f1e/container/1234": [b, c].sorted()])
        #expect(try store.refCount(of: a) == 1)
        #expect(try store.refCount(of: b) == 2)
        #expect(try store.refCount(of: c) == 1)
        #expect(try store.refCount(of: try sha([4])) == 0)
        #expect(try store.ref(holder: "repo/0f1e/container/1234") == [b, c].sorted())
        // One file per holder, named by the hash of the holder.
        #expect(list(store.layout.refsDir).filter { $0.hasSuffix(".json") }.count == 2)
    }

    @Test func refChangesMadeBehindTheIndexAreSeen() throws {
        // Another host on a shared store changes ref files without touching this host's index.
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let a = try sha([1])
        try store.setRef(holder: "repo/x/image/a:1", digests: [a])
        let rf = RefFile(format: 1, holder: "repo/x/image/b:1", digests: [a])
        try store.files.writeAtomically(store.layout.refsDir + "/" + Holder.fileName(rf.holder), try StoreFiles.encode(rf))
        try store.files.writeAtomically(store.layout.refsGenerationFile, Array("99\n".utf8))
        #expect(try store.refCount(of: a) == 2)
        #expect(try store.refs().keys.sorted() == ["repo/x/image/a:1", "repo/x/image/b:1"])
    }

    @Test func statsCountWhatIsStored() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let b1 = try store.ingest(bytes: randomBytes(1000))
        let b2 = try store.ingest(bytes: randomBytes(3000))
        let layer = try installHandmadeLayer(store, blob: b1.digest, files: ["bin/a": randomBytes(500), "etc/b": randomBytes(200)])
        try store.setRef(holder: "repo/r/image/one:1", digests: [b1.digest, layer.diffID])
        try store.setRef(holder: "repo/r/image/two:1", digests: [b1.digest, b2.digest, layer.diffID])
        let s = try store.stats()
        #expect(s.blobCount == 2)
        #expect(s.blobBytes == 4000)
        #expect(s.layerCount == 1)
        #expect(s.unpackedFiles == 2)
        #expect(s.unpackedBytes == 700)
        #expect(s.refCount == 2)
        #expect(s.referencedBytes == 1000 + 700 + 1000 + 3000 + 700)
        #expect(s.dedupRatio == 6400.0 / 4700.0)
        #expect(s.indexDirectory == dir.path + "/index")
        #expect(!s.onNetworkFilesystem)
    }

    @Test func networkFilesystemDecision() {
        for magic: Int64 in [0x6969, 0x517B, 0xFF53_4D42, 0xFE53_4D42, 0x0BD0_0BD0, 0x4750_4653, 0x6573_5546,
                             0x00C3_6400, 0x5346_414F, 0x0102_1997] {
            #expect(FilesystemKind.isNetwork(magic: magic), "magic \(String(magic, radix: 16))")
        }
        // statfs may hand the 32-bit magic sign-extended.
        #expect(FilesystemKind.isNetwork(magic: Int64(Int32(bitPattern: 0xFF53_4D42))))
        for magic: Int64 in [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630] {
            #expect(!FilesystemKind.isNetwork(magic: magic), "magic \(String(magic, radix: 16))")
        }
        let layout = StoreLayout(root: "/shared/store")
        let never: (String) -> Bool = { _ in false }
        #expect(Store.indexLocation(layout: layout, storeID: "id1", onNetworkFilesystem: false,
                                    environment: ["UDOCKER_INDEX_CACHE": "/local"], isNetworkPath: never) == "/shared/store/index")
        #expect(Store.indexLocation(layout: layout, storeID: "id1", onNetworkFilesystem: true,
                                    environment: ["UDOCKER_INDEX_CACHE": "/local", "HOME": "/home/u"], isNetworkPath: never) == "/local/id1")
        #expect(Store.indexLocation(layout: layout, storeID: "id1", onNetworkFilesystem: true,
                                    environment: ["XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"], isNetworkPath: never) == "/xdg/udocker/index/id1")
        #expect(Store.indexLocation(layout: layout, storeID: "id1", onNetworkFilesystem: true,
                                    environment: ["HOME": "/home/u"], isNetworkPath: never) == "/home/u/.cache/udocker/index/id1")
        // A home directory on NFS is no place for LMDB either.
        #expect(Store.indexLocation(layout: layout, storeID: "id1", onNetworkFilesystem: true,
                                    environment: ["HOME": "/home/u"], isNetworkPath: { $0.hasPrefix("/home") })
                == "/tmp/udocker-index-\(getuid())/id1")
    }

    @Test func staleTempFilesOfDeadProcessesAreSweptOnOpen() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let dead = try spawn(["/bin/true"]).pid
        let host = ProcessIdentity.host
        try writeFile(store.layout.tmpDir + "/blob.\(dead).abc@\(host)", [1, 2, 3])
        try FileIO.mkdirs(store.layout.tmpDir + "/layer.\(dead).def@\(host)/root/x")
        try writeFile(store.layout.tmpDir + "/blob.\(getpid()).ghi@\(host)", [1])  // ours: alive
        try writeFile(store.layout.tmpDir + "/blob.\(dead).jkl@other-host", [1])  // cannot check: young
        let reopened = try Store.open(at: dir.path)
        #expect(list(reopened.layout.tmpDir).sorted() == ["blob.\(dead).jkl@other-host", "blob.\(getpid()).ghi@\(host)"].sorted())
        #expect(reopened.notes.contains { $0.contains("removed 2 temporary") })
    }

    /// A dead process's layer tree deeper than PATH_MAX (from a hostile layer) is swept as well: the
    /// removal walks by descriptors, never by whole paths.
    @Test func aTempTreeDeeperThanPathMaxIsSwept() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let dead = try spawn(["/bin/true"]).pid
        let top = store.layout.tmpDir + "/dead-layer.\(dead).xyz@\(ProcessIdentity.host)"
        try FileIO.mkdirs(top)
        var fd = open(top, O_RDONLY | O_DIRECTORY)
        try #require(fd >= 0)
        for _ in 0..<2100 {   // 2100 levels of "dd/": 6300 bytes below tmp
            #expect(mkdirat(fd, "dd", 0o755) == 0)
            let child = openat(fd, "dd", O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = child
        }
        #expect(openat(fd, "f", O_WRONLY | O_CREAT, 0o444) >= 0)
        _ = fchmod(fd, 0o555)
        close(fd)
        let reopened = try Store.open(at: dir.path)
        #expect(list(reopened.layout.tmpDir).isEmpty, "\(list(reopened.layout.tmpDir))")
    }

    /// A claim on a digest makes the next claimant wait for the holder (told once), lets claims on other
    /// digests through, and a cancelled claimant stops waiting.
    @Test func aClaimWaitsForItsHolderOnlyAndACancelledClaimantGivesUp() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let d = try sha([1, 2, 3])
        let held = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), secondDone = DispatchSemaphore(value: 0)
        let log = LogBox()
        Thread {
            try? store.withClaim(on: d) { held.signal(); release.wait(); log.add("first done") }
        }.start()
        held.wait()
        Thread {
            try? store.withClaim(on: d, waiting: { log.add("waiting") }) { log.add("second ran") }
            secondDone.signal()
        }.start()
        #expect(try store.withClaim(on: try sha([4])) { "other digest" } == "other digest")
        #expect(throws: CASError.self) { try store.withClaim(on: d, cancelled: { true }) { log.add("cancelled ran") } }
        usleep(200_000)
        #expect(log.items == ["waiting"])
        release.signal()
        secondDone.wait()
        #expect(log.items == ["waiting", "first done", "second ran"])
    }
}

/// Thread-safe collector for the concurrency test.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Result<BlobRecord, any Error>] = []
    func add(_ r: Result<BlobRecord, any Error>) { lock.lock(); items.append(r); lock.unlock() }
    var all: [Result<BlobRecord, any Error>] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Thread-safe event log for the claim test.
final class LogBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.lock(); list.append(s); lock.unlock() }
    var items: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
