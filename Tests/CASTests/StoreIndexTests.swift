// The index is a cache of the files: deleted, damaged or behind, it is rebuilt to exactly the same
// content; LMDB's map grows when full.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

@Suite("Store index")
struct StoreIndexTests {
    /// A store with blobs (with and without media type), a layer, refs and a removed ref.
    func populate(_ path: String) throws -> [String] {
        let store = try Store.create(at: path)
        let b1 = try store.ingest(bytes: randomBytes(5000), mediaType: "application/vnd.oci.image.layer.v1.tar")
        let b2 = try store.ingest(bytes: randomBytes(700))
        let cfg = try store.ingest(bytes: Array(#"{"config":{}}"#.utf8), mediaType: "application/vnd.oci.image.config.v1+json")
        let layer = try installHandmadeLayer(store, blob: b1.digest,
                                             files: ["bin/sh": randomBytes(300), "etc/os-release": Array("ID=test\n".utf8),
                                                     "usr/share/a file with spaces": randomBytes(10)])
        try store.setRef(holder: "repo/r1/image/test:1", digests: [b1.digest, cfg.digest, layer.diffID])
        try store.setRef(holder: "repo/r1/container/c1", digests: [layer.diffID])
        try store.setRef(holder: "repo/r1/image/gone:1", digests: [b2.digest])
        try store.removeRef(holder: "repo/r1/image/gone:1")
        let dump = try store.dumpIndex()
        #expect(dump.contains { $0.hasPrefix("blob \(b2.digest) size=700") && $0.hasSuffix("type=-") })
        #expect(dump.contains { $0.hasPrefix("file \(layer.diffID) \"usr/share/a file with spaces\"") })
        #expect(dump.contains("refcount \(layer.diffID) 2"))
        #expect(dump.contains("blob-layer \(b1.digest) \(layer.diffID)"))
        return dump
    }

    @Test func deletedIndexIsRebuiltIdentically() throws {
        let dir = try TempDir()
        let before = try populate(dir.path)
        try FileIO.removeTree(dir.path + "/index")
        let store = try Store.open(at: dir.path)
        #expect(store.notes.contains { $0.contains("missing") })
        #expect(try store.dumpIndex() == before)
        // An explicit rebuild changes nothing either.
        try store.rebuildIndex()
        #expect(try store.dumpIndex() == before)
    }

    @Test func damagedIndexIsDetectedAndRebuiltIdentically() throws {
        let dir = try TempDir()
        let before = try populate(dir.path)
        let data = dir.path + "/index/data.mdb"
        let fd = try FileIO.open(data, O_WRONLY)
        let garbage = randomBytes(4096)
        try garbage.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: data) }
        _ = close(fd)
        let store = try Store.open(at: dir.path)
        #expect(store.notes.contains { $0.contains("damaged") })
        #expect(try store.dumpIndex() == before)
        #expect(list(dir.path).filter { $0.contains("damaged") }.isEmpty)
    }

    @Test func indexWithoutFormatRecordIsRebuilt() throws {
        let dir = try TempDir()
        let before = try populate(dir.path)
        do {
            let store = try Store.open(at: dir.path)
            try store.index.write { t in try t.delete(.meta, Array("format".utf8)) }
        }
        let store = try Store.open(at: dir.path)
        #expect(store.notes.contains { $0.contains("no format record") })
        #expect(try store.dumpIndex() == before)
    }

    @Test func blobFileMissingFromIndexIsAddedOnLookup() throws {
        let dir = try TempDir()
        let before = try populate(dir.path)
        let store = try Store.open(at: dir.path)
        // What a crash between the rename and the index write leaves: a blob file the index lacks.
        let blob = try store.blobs()[0]
        try store.index.write { t in try t.delete(.blobs, blob.digest.rawBytes) }
        #expect(try store.dumpIndex() != before)
        #expect(try store.blobRecord(blob.digest) == blob)
        #expect(try store.dumpIndex() == before)
        // verify fixes such entries too, silently (counted, not a problem).
        try store.index.write { t in try t.delete(.blobs, blob.digest.rawBytes) }
        let report = try store.verify(repair: false)
        #expect(report.problems.isEmpty)
        #expect(report.indexEntriesFixed == 1)
        #expect(try store.dumpIndex() == before)
    }

    @Test func storeOpenedTwiceInOneProcessSharesTheIndex() throws {
        let dir = try TempDir()
        let a = try Store.create(at: dir.path)
        let b = try Store.open(at: dir.path)
        let r = try a.ingest(bytes: randomBytes(100))
        #expect(try b.blobRecord(r.digest) == r)
        #expect(try a.dumpIndex() == b.dumpIndex())
    }

    @Test func mapGrowsWhenFull() throws {
        let dir = try TempDir()
        let env = try LMDBEnv.open(directory: dir.path, mapSize: 64 << 10)
        defer { env.close() }
        let value = randomBytes(1000)
        for batch in 0..<10 {
            try env.write { t in
                for i in 0..<500 { try t.put(.files, Array("\(batch)-\(i)".utf8), value) }
            }
        }
        let n = try env.read { t in
            var n = 0
            try t.forEach(.files) { _, v in
                n += v == value ? 1 : 0
                return true
            }
            return n
        }
        #expect(n == 5000)
    }

    /// The files database holds what docs/store-format.md says: key diff_id (32) + sha256 of the path
    /// (32), value file digest (32) + size (u64 little-endian) + path; one record per regular file.
    @Test func fileRecordsFollowTheDocumentedLayout() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let blob = try store.ingest(bytes: randomBytes(100))
        let files = ["bin/sh": randomBytes(300), "usr/share/doc/a rather long name of a file/é.txt": randomBytes(70_000),
                     "empty": []]
        let layer = try installHandmadeLayer(store, blob: blob.digest, files: files)
        var expected = [[UInt8]: [UInt8]]()
        for (path, bytes) in files {
            var size = UInt64(bytes.count).littleEndian
            let sizeBytes = withUnsafeBytes(of: &size) { Array($0) }
            expected[layer.diffID.rawBytes + (try sha(Array(path.utf8))).rawBytes] =
                (try sha(bytes)).rawBytes + sizeBytes + Array(path.utf8)
        }
        var found = [[UInt8]: [UInt8]]()
        try store.index.read { t in
            try t.forEach(.files, prefix: layer.diffID.rawBytes) { k, v in
                found[k] = v
                return true
            }
        }
        #expect(found == expected)
        #expect(try store.fileDigest(layer: layer.diffID, path: "empty")?.digest == (try sha([])))
    }
}

@Suite("Store on a network filesystem")
struct StoreNetworkTests {
    @Test func indexLivesInTheLocalCacheAndNeverInTheStore() throws {
        let shared = try TempDir("shared")
        let cache = try TempDir("cache")
        let env = ["UDOCKER_ASSUME_NETWORK_FS": "1", "UDOCKER_INDEX_CACHE": cache.path, "HOME": "/nonexistent"]
        let before: [String]
        let id: String
        do {
            let store = try Store.create(at: shared.path, environment: env)
            id = store.id
            #expect(store.onNetworkFilesystem)
            #expect(store.indexDirectory == cache.path + "/" + store.id)
            let b = try store.ingest(bytes: randomBytes(1000), mediaType: "m/t")
            try store.setRef(holder: "repo/r/image/a:1", digests: [b.digest])
            #expect(try store.stats().indexDirectory == cache.path + "/" + store.id)
            before = try store.dumpIndex()
        }
        #expect(!FileIO.exists(shared.path + "/index"))
        #expect(FileIO.exists(cache.path + "/" + id + "/data.mdb"))

        // Another host (a fresh cache) sees the same store through its files.
        let otherHost = try TempDir("cache2")
        var env2 = env
        env2["UDOCKER_INDEX_CACHE"] = otherHost.path
        let other = try Store.open(at: shared.path, environment: env2)
        #expect(other.notes.contains { $0.contains("missing") })
        #expect(try other.dumpIndex() == before)
        // It adds a ref behind the first host's index; the first host notices through refs/generation.
        let c = try other.ingest(bytes: randomBytes(10))
        try other.setRef(holder: "repo/r/image/b:1", digests: [c.digest])
        let first = try Store.open(at: shared.path, environment: env)
        #expect(try first.refs().keys.sorted() == ["repo/r/image/a:1", "repo/r/image/b:1"])
        #expect(try first.blobRecord(c.digest)?.size == 10)
        #expect(!FileIO.exists(shared.path + "/index"))
    }

    @Test func eightThreadsChangingRefsLoseNothing() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let shared = try sha([0])
        let group = DispatchGroup()
        for i in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                for j in 0..<10 {
                    do {
                        try store.setRef(holder: "repo/r/container/t\(i)-\(j)", digests: [shared, try sha([UInt8(i), UInt8(j)])])
                    } catch {
                        Issue.record(error)
                    }
                }
                do { try store.removeRef(holder: "repo/r/container/t\(i)-0") } catch { Issue.record(error) }
            }.start()
        }
        group.wait()
        // 8 threads x 10 refs, one of each thread's removed again.
        #expect(try store.refs().count == 72)
        #expect(try store.refCount(of: shared) == 72)
        #expect(store.files.refsGeneration() == 88)
        #expect(try store.refCount(of: try sha([3, 5])) == 1)
        #expect(try store.refCount(of: try sha([3, 0])) == 0)
        let dump = try store.dumpIndex()
        try store.rebuildIndex()
        #expect(try store.dumpIndex() == dump)
    }
}
