// Resumable partial blobs (STORE/tmp/partial.<hex>), as sync uses them: a writer kept half-way is
// continued by the next one, which re-hashes what is there; one writer at a time; a mismatch removes it.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

@Suite("Store partial blobs", .timeLimit(.minutes(2)))
struct StorePartialTests {
    @Test func aKeptPartialIsContinuedAndCommitted() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let bytes = randomBytes(3 << 20)
        let d = try sha(bytes)
        let first = try #require(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: "x/y"))
        #expect(first.bytesWritten == 0)
        try first.write(Array(bytes[0..<(1 << 20)]))
        // A second writer while the first holds the file: none (the caller writes its own temp).
        #expect(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: "x/y") == nil)
        first.keepPartial()
        #expect(store.partialBlobSize(d) == 1 << 20)
        #expect(!store.hasBlob(d))

        let second = try #require(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: "x/y"))
        #expect(second.bytesWritten == 1 << 20)
        try second.write(Array(bytes[(1 << 20)...]))
        let r = try second.commit()
        #expect(r.digest == d && r.size == UInt64(bytes.count))
        #expect(try FileIO.readFile(store.blobPath(d)) == bytes)
        #expect(!FileIO.exists(store.partialBlobPath(d)))
        #expect(try store.verify(repair: false).problems.isEmpty)
    }

    @Test func aPartialThatDoesNotMatchIsRemovedAndAnEmptyOneIsNotKept() throws {
        let dir = try TempDir()
        let store = try Store.create(at: dir.path)
        let bytes = randomBytes(2 << 20)
        let d = try sha(bytes)
        // A partial file whose first bytes are wrong (changed after it was kept).
        let w = try #require(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: nil))
        var wrong = Array(bytes[0..<4096])
        wrong[7] ^= 1
        try w.write(wrong)
        w.keepPartial()
        let again = try #require(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: nil))
        try again.write(Array(bytes[4096...]))
        #expect(throws: CASError.self) { _ = try again.commit() }
        #expect(!FileIO.exists(store.partialBlobPath(d)) && !store.hasBlob(d))

        let empty = try #require(try store.beginResumableBlob(expected: d, expectedSize: UInt64(bytes.count), mediaType: nil))
        empty.keepPartial()
        #expect(!FileIO.exists(store.partialBlobPath(d)))
    }
}
