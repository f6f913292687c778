// Tests of the file finisher (small files created, and times, modes and close of the others, on worker
// threads) and of unpacks with many more files, or directories, than its queue or descriptor cache holds.
import Foundation
import Testing
@testable import CAS

/// Directories d0 ..< d`count` made in `box`, open.
private func openDirectories(_ box: Sandbox, _ count: Int) throws -> [Int32] {
    try (0..<count).map { d -> Int32 in
        try FileIO.mkdirs(box.path("d\(d)"))
        let fd = open(box.path("d\(d)"), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(fd >= 0)
        return fd
    }
}

@Suite struct FileFinisherTests {
    @Test func finishesManyMoreFilesThanItsQueueHolds() throws {
        let box = try Sandbox("finisher")
        let finisher = try FileFinisher()
        defer { finisher.stop() }
        let n = FileFinisher.capacity * 4 + 3
        let modes: [mode_t] = [0o400, 0o500, 0o444, 0o555]
        for i in 0..<n {
            let fd = open(box.path("f\(i)"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            let job = FileFinisher.Job(fd: fd, mtime: timespec(tv_sec: 1_000_000 + i, tv_nsec: i * 1000),
                                       mode: modes[i % modes.count], chmod: true, entry: i)
            #expect(finisher.submit(job) == nil)
        }
        #expect(finisher.drain() == nil)
        for i in 0..<n {
            let st = try #require(lstatOf(box.path("f\(i)")))
            #expect(st.st_mtim.tv_sec == 1_000_000 + i)
            #expect(st.st_mtim.tv_nsec == i * 1000)
            #expect(st.st_mode & 0o7777 == modes[i % modes.count])
        }
    }

    @Test func firstFailureIsReportedAndLaterFilesAreRefused() throws {
        let box = try Sandbox("finisher")
        let finisher = try FileFinisher()
        defer { finisher.stop() }
        try box.write("a", [1])
        // futimens on an O_PATH descriptor fails with EBADF: a failure the test can cause.
        let pathFD = open(box.path("a"), 0o10000000 | O_CLOEXEC)
        try #require(pathFD >= 0)
        #expect(finisher.submit(FileFinisher.Job(fd: pathFD, mtime: timespec(tv_sec: 5, tv_nsec: 0), mode: 0o400,
                                                 chmod: false, entry: 7)) == nil)
        let failure = FileFinisher.Failure(op: "set times of", entry: 7, err: EBADF)
        #expect(finisher.drain() == failure)
        let fd = open(box.path("b"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        #expect(finisher.submit(FileFinisher.Job(fd: fd, mtime: timespec(tv_sec: 5, tv_nsec: 0), mode: 0o400,
                                                 chmod: true, entry: 8)) == failure)
        close(fd)
        #expect(lstatOf(box.path("b")).map { $0.st_mode & 0o7777 } == 0o600)
    }

    @Test func unpackOfManyFilesSetsEveryTimeAndMode() throws {
        let box = try Sandbox("finisher")
        let n = FileFinisher.capacity * 5 + 1
        var entries = [TarEntry]()
        for d in 0..<4 { entries.append(.dir("d\(d)/", mtime: 1_400_000_000 + d)) }
        for i in 0..<n {
            entries.append(.file("d\(i % 4)/f\(i)", "file \(i)\n", mode: i % 2 == 0 ? 0o644 : 0o755,
                                 mtime: 1_500_000_000 + i))
        }
        try writeTar(entries, to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(m.fileCount == n)
        for i in 0..<n {
            let path = "d\(i % 4)/f\(i)"
            let st = try #require(lstatOf(root + "/" + path))
            #expect(st.st_mtim.tv_sec == 1_500_000_000 + i, "mtime of \(path)")
            #expect(st.st_mode & 0o7777 == (i % 2 == 0 ? 0o444 : 0o555), "mode of \(path)")
            #expect(fileText(root + "/" + path) == "file \(i)\n")
        }
        // Directory times are set last, after every file in them is finished.
        for d in 0..<4 { #expect(lstatOf(root + "/d\(d)")?.st_mtim.tv_sec == 1_400_000_000 + d) }
    }

    @Test func createsFilesFromTheirContentOnSeveralThreads() throws {
        let box = try Sandbox("finisher")
        let finisher = try FileFinisher(workers: 3)
        defer { finisher.stop() }
        let dirs = try openDirectories(box, 3)
        defer { for fd in dirs { close(fd) } }
        let n = FileFinisher.capacity * 6 + 5
        for i in 0..<n {
            let text = Array("content of \(i) ".utf8) + Array(repeating: UInt8(i % 251), count: i * 7)
            let job = finisher.createJob(dirFD: dirs[i % 3], name: "f\(i)", size: text.count,
                                             mtime: timespec(tv_sec: 2_000_000 + i, tv_nsec: 0),
                                             mode: i % 2 == 0 ? 0o444 : 0o555, chmod: true, entry: i)
            try #require(job.content != nil)
            text.withUnsafeBytes { job.content?.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            #expect(finisher.submit(job) == nil)
        }
        #expect(finisher.drain() == nil)
        #expect(finisher.takeSkips().isEmpty)
        for i in 0..<n {
            let path = box.path("d\(i % 3)/f\(i)")
            let st = try #require(lstatOf(path))
            #expect(st.st_mtim.tv_sec == 2_000_000 + i)
            #expect(st.st_mode & 0o7777 == (i % 2 == 0 ? 0o444 : 0o555))
            let expected = Array("content of \(i) ".utf8) + Array(repeating: UInt8(i % 251), count: i * 7)
            #expect(FileManager.default.contents(atPath: path).map(Array.init) == expected, "content of \(path)")
        }
    }

    @Test func aRefusedNameIsASkipAndAnExistingFileAFailure() throws {
        let box = try Sandbox("finisher")
        let finisher = try FileFinisher(workers: 2)
        defer { finisher.stop() }
        let dir = open(box.path(""), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try #require(dir >= 0)
        defer { close(dir) }
        func job(_ name: String, _ entry: Int) -> FileFinisher.Job {
            finisher.createJob(dirFD: dir, name: name, size: 0, mtime: timespec(tv_sec: 9, tv_nsec: 0),
                                   mode: 0o444, chmod: false, entry: entry)
        }
        #expect(finisher.submit(job(String(repeating: "n", count: 300), 3)) == nil)
        #expect(finisher.submit(job("fine", 4)) == nil)
        #expect(finisher.drain() == nil)
        #expect(finisher.takeSkips() == [FileFinisher.Failure(op: "open", entry: 3, err: ENAMETOOLONG)])
        #expect(finisher.takeSkips().isEmpty)
        #expect(lstatOf(box.path("fine"))?.st_mtim.tv_sec == 9)
        // O_EXCL: a file that is there already is never written over.
        try box.write("taken", [7])
        #expect(finisher.submit(job("taken", 5)) == nil)
        let failure = FileFinisher.Failure(op: "open", entry: 5, err: EEXIST)
        #expect(finisher.drain() == failure)
        #expect(finisher.submit(job("later", 6)) == failure)
        #expect(FileManager.default.contents(atPath: box.path("taken")) == Data([7]))
        #expect(lstatOf(box.path("later")) == nil)
    }

    @Test func unpackOfMoreDirectoriesThanTheDescriptorCacheHolds() throws {
        let box = try Sandbox("finisher")
        // More directories than the cache's largest size (1024), so it is emptied while files are queued.
        var entries = [TarEntry]()
        for d in 0..<1100 {
            entries.append(.dir("d\(d)/"))
            entries.append(.file("d\(d)/a", "a \(d)"))
            entries.append(.file("d\(d)/b", "b \(d)"))
        }
        try writeTar(entries, to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(m.fileCount == 2200)
        #expect(m.skipped.isEmpty)
        for d in 0..<1100 {
            #expect(fileText(root + "/d\(d)/a") == "a \(d)")
            #expect(fileText(root + "/d\(d)/b") == "b \(d)")
        }
    }

    @Test func aNameLongerThanTheFilesystemTakesIsSkippedAndTheRestUnpacked() throws {
        let box = try Sandbox("finisher")
        let long = String(repeating: "x", count: 300)
        try writeTar([.file("before", "1"), .file("dir/" + long, "too long"), .file("after", "2"),
                      .hardlink("alias", "before")], to: box.path("layer.tar"))
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("layer.tar"), into: root)
        #expect(m.entry("dir/" + long) == nil)
        #expect(m.skipReason("dir/" + long)?.contains("not created") == true)
        #expect(fileText(root + "/before") == "1")
        #expect(fileText(root + "/after") == "2")
        #expect(fileText(root + "/alias") == "1")
    }

    @Test func smallSparseFilesAreWrittenWithTheirHolesAsZeros() throws {
        let box = try Sandbox("finisher")
        // 192 KiB with data at 64 KiB and at the end: small enough for the finisher threads.
        let sparse = try writeSparseTar(in: box, size: 192 << 10, middle: 64 << 10)
        let root = try box.emptyDirectory("root")
        let m = try unpack(box.path("sparse.tar"), into: root)
        let (digest, _) = try SHA256Hasher.hash(fileAt: sparse)
        #expect(m.entry("sparse")?.size == 192 << 10)
        #expect(m.entry("sparse")?.digest == digest)
        #expect((try SHA256Hasher.hash(fileAt: root + "/sparse")).0 == digest)
    }

    @Test func inlineAndCreatedFilesWithDrainsBetweenAndAStopWithFilesQueued() throws {
        let box = try Sandbox("finisher")
        let dirs = try openDirectories(box, 4)
        defer { for fd in dirs { close(fd) } }
        let n = 1500
        do {
            let finisher = try FileFinisher(workers: 4)
            for i in 0..<n {
                // Runs of 37 files per directory, every fifth file written inline.
                let dir = (i / 37) % 4
                let mtime = timespec(tv_sec: 3_000_000 + i, tv_nsec: 0)
                if i % 5 == 0 {
                    let fd = openat(dirs[dir], "f\(i)", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                    try #require(fd >= 0)
                    #expect(pwrite(fd, "inline \(i)", "inline \(i)".utf8.count, 0) > 0)
                    #expect(finisher.submit(FileFinisher.Job(fd: fd, mtime: mtime, mode: 0o444, chmod: true, entry: i)) == nil)
                } else {
                    let text = Array("created \(i)".utf8)
                    let job = finisher.createJob(dirFD: dirs[dir], name: "f\(i)", size: text.count, mtime: mtime,
                                                 mode: 0o444, chmod: true, entry: i)
                    text.withUnsafeBytes { job.content?.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                    #expect(finisher.submit(job) == nil)
                }
                if i % 211 == 0 { #expect(finisher.drain() == nil) }
            }
            // No drain: stop alone must still create and finish everything queued, and return.
            finisher.stop()
        }
        for i in 0..<n {
            let path = box.path("d\((i / 37) % 4)/f\(i)")
            #expect(fileText(path) == (i % 5 == 0 ? "inline \(i)" : "created \(i)"), "content of \(path)")
            let st = try #require(lstatOf(path))
            #expect(st.st_mtim.tv_sec == 3_000_000 + i)
            #expect(st.st_mode & 0o7777 == 0o444)
        }
    }
}
