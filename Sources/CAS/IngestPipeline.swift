// Ingest of large inputs on two threads: the caller reads and hashes one buffer while a writer
// thread writes the previous one, so ingest runs at the speed of the slower of the two.
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Buffers passed between the reading/hashing thread and the writing thread.
final class IngestPipeline: @unchecked Sendable {
    static let slots = 4
    private let fd: Int32
    private let path: String
    private let buffers: [UnsafeMutableRawBufferPointer]
    // lengths[i] is written by the reader before `full.signal()` and read by the writer after
    // `full.wait()`: the semaphores order the accesses. -1 ends the stream.
    private var lengths: [Int]
    // Created at 0 and signalled up: libdispatch traps when a semaphore is freed below its initial value.
    private let free = DispatchSemaphore(value: 0)
    private let full = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let errorLock = NSLock()
    private var writeError: CASError?

    init(fd: Int32, path: String, bufferSize: Int) {
        self.fd = fd
        self.path = path
        buffers = (0..<IngestPipeline.slots).map { _ in
            UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        }
        lengths = Array(repeating: 0, count: IngestPipeline.slots)
        for _ in 0..<IngestPipeline.slots { free.signal() }
    }

    deinit { for b in buffers { b.deallocate() } }

    var error: CASError? {
        errorLock.lock()
        defer { errorLock.unlock() }
        return writeError
    }

    private func writerLoop() {
        var i = 0
        var first = true
        var offset: Int64 = 0
        while true {
            full.wait()
            let n = lengths[i]
            if n < 0 { break }
            if error == nil {
                do {
                    try FileIO.writeAll(fd, UnsafeRawBufferPointer(rebasing: buffers[i][0..<n]), path: path)
                    // Start writing this chunk to disk now, so the fsync before the rename does
                    // not wait for the whole blob. Advisory: an error here changes nothing.
                    _ = ud_start_writeback(fd, offset, Int64(n))
                    offset += Int64(n)
                    if first { Failpoint.hit("ingest-mid-write") }
                    first = false
                } catch let e as CASError {
                    errorLock.lock()
                    writeError = e
                    errorLock.unlock()
                } catch {
                    errorLock.lock()
                    writeError = .internalFailure("\(error)")
                    errorLock.unlock()
                }
            }
            free.signal()
            i = (i + 1) % IngestPipeline.slots
        }
        finished.signal()
    }

    /// Reads `input` to EOF, hashing on this thread (through `writer`) and writing on another.
    func run(input: Int32, writer: BlobWriter, inputName: String) throws {
        let t = Thread { [self] in writerLoop() }
        t.start()
        var i = 0
        var failure: (any Error)?
        while true {
            free.wait()
            if error != nil { break }
            let n = read(input, buffers[i].baseAddress, buffers[i].count)
            if n < 0 {
                if errno == EINTR {
                    free.signal()
                    continue
                }
                failure = CASError.io("read", inputName, errno)
                break
            }
            if n == 0 { break }
            do { try writer.hashOnly(UnsafeRawBufferPointer(rebasing: buffers[i][0..<n])) } catch {
                failure = error
                break
            }
            lengths[i] = n
            full.signal()
            i = (i + 1) % IngestPipeline.slots
        }
        lengths[i] = -1
        full.signal()
        finished.wait()
        if let e = error ?? failure { throw e }
    }
}
