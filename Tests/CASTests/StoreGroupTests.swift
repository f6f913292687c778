// Group stores in the CAS: directories setgid and group-writable and objects readable whatever the
// umask, the permission check, and another host's reservations honoured until they expire.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

@Suite struct StoreGroupTests {
    /// The user's own primary group stands in for a project group: the rules are the same.
    var ownGroup: SharedGroup { SharedGroup(name: SharedGroup.name(of: getegid()), gid: getegid()) }

    @Test func aGroupStoreGivesTheGroupEveryDirectoryAndObjectWhateverTheUmask() throws {
        // (Whatever the umask: the integration tests run the other members under umask 077; changing
        // it here would change it for every test running at the same time.)
        let dir = try TempDir("group")
        let store = try Store.create(at: dir.path + "/s", group: ownGroup)
        #expect(store.group == ownGroup)
        let blob = try store.ingest(bytes: randomBytes(1000)).digest
        for d in Store.groupDirectories(store.layout) + [store.layout.blobDir(blob)] {
            #expect(fileMode(d) & 0o2070 == 0o2070, "\(d) \(String(fileMode(d), radix: 8))")
        }
        #expect(fileMode(store.layout.blobPath(blob)) == 0o444)
        for f in Store.lockFiles(store.layout) { #expect(fileMode(f) & 0o060 == 0o060, "\(f)") }
        // The index is this member's own, not a shared file in the store.
        #expect(!store.indexDirectory.hasPrefix(store.layout.root))
        #expect(Store.groupProblems(store.layout, gid: ownGroup.gid).isEmpty)
        // Joining again changes nothing; a wrong mode is reported with the fix.
        _ = try Store.create(at: dir.path + "/s", group: ownGroup)
        #expect(chmod(store.layout.tmpDir, 0o755) == 0)
        let problems = Store.groupProblems(store.layout, gid: ownGroup.gid)
        #expect(problems.count == 1 && problems[0].contains(store.layout.tmpDir) && problems[0].contains("setgid"), "\(problems)")
        #expect(throws: CASError.self) { _ = try Store.open(at: dir.path + "/s") }
    }

    @Test func anotherHostsReservationIsHonouredUntilItExpires() throws {
        let dir = try TempDir("group")
        let store = try Store.create(at: dir.path)
        let reserved = try store.ingest(bytes: randomBytes(100)).digest
        let holder = "pending/other-host+4026531836/4242"
        try store.setRef(holder: holder, digests: [reserved])
        var report = try store.gc(dryRun: false)
        #expect(report.removedBlobs.isEmpty && report.expiredPendingRefs.isEmpty)
        #expect(store.hasBlob(reserved))
        // Unchanged for longer than the lifetime: dropped, and what only it held goes.
        let file = store.layout.refsDir + "/" + Holder.fileName(holder)
        var times = [timespec(tv_sec: time(nil) - Int(Holder.foreignPendingLifetime) - 60, tv_nsec: 0)]
        times.append(times[0])
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        report = try store.gc(dryRun: true)
        #expect(report.expiredPendingRefs == [holder] && report.removedBlobs == [reserved])
        report = try store.gc(dryRun: false)
        #expect(report.expiredPendingRefs == [holder] && report.removedBlobs == [reserved])
        #expect(!store.hasBlob(reserved))
        #expect(report.summary.contains { $0.contains("other hosts") })
    }
}
