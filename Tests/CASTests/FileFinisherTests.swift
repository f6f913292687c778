// Tests of the file finisher (times, modes and close of unpacked files on a second thread) and of an
// unpack with many more files than its queue holds: every file ends with its tar mtime and store mode.
import Foundation
import Testing
@testable import CAS

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
}
