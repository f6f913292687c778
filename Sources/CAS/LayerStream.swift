// The streaming half of the layer unpacker: a worker thread turns the layer (gzip, zstd, xz, bzip2 or plain,
// detected from content) into the uncompressed tar stream; two more hash it, whole (the diff_id) and file by
// file, from the same ring of buffers the tar reader parses, so that nothing waits for SHA-256.
import CArchive
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// One layer's uncompressed byte stream, produced and hashed off the unpacking thread.
///
/// Threads: the producer reads the input and, when it is compressed, decompresses it with libarchive's raw
/// format and one of its filters into a ring of slots. The stream hasher hashes every slot in order (the
/// diff_id). The consumer is the unpacking thread: `next()` is the tar reader's read callback, and while
/// writing a regular file it queues the file's data blocks (pointers into the slots) with `fileData`; the
/// file hasher hashes them into per-file digests. So the unpacking thread does only parsing and system
/// calls, like `tar -x`, and SHA-256 never slows decompression (the bottleneck for gzip and xz).
///
/// A slot is refilled only when the stream hasher, the consumer and the file hasher are all done with it.
/// A slot handed to the consumer stays untouched until its following `next()` (libarchive's contract for
/// the buffer a read callback returns); file blocks queued from it are handed to the file hasher in that
/// same `next()`, before the slot counts as released.
final class LayerStream: @unchecked Sendable {
    // @unchecked: the ring counters, flags, `batches` and `fileSlotsDone` are used only with `mutex` held.
    // Slot memory is written only by the producer, and only while no other thread may read it (see
    // `acquireSlot`). `reader`, `input`, `prefixCount`, `inputErrno` belong to the creating thread until
    // `start()`, then to the producer. `streamHasher` belongs to the stream hasher; `fileHasher`,
    // `digests` and `zeros` to the file hasher; `batch`, `filesBegun` to the consumer. `finish()` reads
    // the hashers' results only after joining every thread. `knownDiffID` is settled in `init` and only read after.
    static let slotSize = 1 << 20
    static let slotCount = 8

    /// One unit of work for the file hasher, in stream order.
    private enum FileJob {
        case begin
        case data(UnsafeRawPointer, Int)   // inside a slot, which stays unchanged until the job is done
        case copied([UInt8])              // a block libarchive returned from its own buffer
        case zeros(Int64)                 // a hole of a sparse file
        case end
    }

    /// "gzip", "zstd", "xz", "bzip2" or "none".
    private(set) var compression = "none"
    private let sourceName: String
    private let fd: Int32
    /// Decompressor (nil for an uncompressed layer).
    private var reader: OpaquePointer?
    /// Compressed input as read from `fd`; its first `prefixCount` bytes were read to sniff the format.
    private let input: UnsafeMutableRawPointer
    private var prefixCount = 0
    private var inputErrno: Int32 = 0
    /// The diff_id, when the caller already knows it (a verified digest of an uncompressed blob): then the
    /// stream hasher does not run and `hashed` follows `produced`.
    private var knownDiffID: Digest?
    /// Most decompressed bytes to produce before failing (for input not verified yet: a decompression
    /// bomb is stopped before it fills the disk).
    private let outputLimit: Int64?
    private let streamHasher: SHA256Hasher
    private let fileHasher: SHA256Hasher
    private var digests: [Digest] = []
    private var zeros: UnsafeMutableRawBufferPointer?
    private let slots: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let canFill: UnsafeMutablePointer<pthread_cond_t>
    private let canTake: UnsafeMutablePointer<pthread_cond_t>
    private let canHash: UnsafeMutablePointer<pthread_cond_t>
    private let canHashFiles: UnsafeMutablePointer<pthread_cond_t>
    /// Slots counted from the start of the stream: filled, hashed, taken and given back by the consumer.
    private var produced = 0
    private var hashed = 0
    private var consumed = 0
    private var released = 0
    /// Slots whose file blocks the file hasher has finished with.
    private var fileSlotsDone = 0
    private var holding = false
    private var finished = false
    private var cancelled = false
    private var noMoreFileJobs = false
    private var failureText: String?
    /// File jobs handed over, each batch with the number of slots released when it was handed over.
    private var batches: [(jobs: [FileJob], slotsReleased: Int)] = []
    /// File jobs of the slot the consumer holds, not yet handed over.
    private var batch: [FileJob] = []
    private var filesBegun = 0
    private var producerThread: pthread_t?
    private var streamHashThread: pthread_t?
    private var fileHashThread: pthread_t?

    /// Prepares to read the layer on `fd` from its current offset and detects its compression from the
    /// first bytes. The descriptor stays open and owned by the caller. `verifiedBlobDigest`, the digest the
    /// caller verified these bytes against, becomes the diff_id if the layer turns out to be uncompressed
    /// (the blob then is the tar), so the whole stream is not hashed a second time; otherwise it is ignored.
    init(fd: Int32, sourceName: String, verifiedBlobDigest: Digest? = nil, outputLimit: Int64? = nil) throws {
        self.sourceName = sourceName
        self.fd = fd
        self.outputLimit = outputLimit
        knownDiffID = verifiedBlobDigest
        streamHasher = try SHA256Hasher()
        fileHasher = try SHA256Hasher()
        (input, slots) = RingMemory.shared.take()
        lengths = UnsafeMutablePointer<Int>.allocate(capacity: LayerStream.slotCount)
        lengths.initialize(repeating: 0, count: LayerStream.slotCount)
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        canFill = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        canTake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        canHash = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        canHashFiles = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        for c in [canFill, canTake, canHash, canHashFiles] { pthread_cond_init(c, nil) }
        // From here every stored property is set, so a throw still runs deinit and frees the above.

        while prefixCount < 6 {
            let n = read(fd, input + prefixCount, LayerStream.slotSize - prefixCount)
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("read", sourceName, errno)
            }
            if n == 0 { break }
            prefixCount += n
        }
        if prefixCount == 0 {
            throw CASError.badLayer("\(sourceName): the layer is empty (0 bytes); pull the image again")
        }
        if !LayerStream.looksCompressed(input, prefixCount) { return }
        knownDiffID = nil

        guard let r = archive_read_new() else {
            throw CASError.internalFailure("cannot allocate a libarchive reader")
        }
        reader = r
        // Only the compressions registries use; libarchive would otherwise also run external programs
        // (lrzip, lzop, ...) for exotic filters, which a layer has no business asking for.
        archive_read_support_filter_gzip(r)
        archive_read_support_filter_zstd(r)
        archive_read_support_filter_xz(r)
        archive_read_support_filter_bzip2(r)
        archive_read_support_format_raw(r)
        var entry: OpaquePointer?
        var rc = archive_read_open(r, Unmanaged.passUnretained(self).toOpaque(), nil, LayerStream.inputCallback, nil)
        if rc == ARCHIVE_OK || rc == ARCHIVE_WARN {
            rc = archive_read_next_header(r, &entry)
        }
        if rc != ARCHIVE_OK && rc != ARCHIVE_WARN {
            throw CASError.badLayer("\(sourceName): \(decompressorError(r)) (the layer is truncated or corrupt; pull the image again)")
        }
        switch archive_filter_code(r, 0) {
        case ARCHIVE_FILTER_GZIP: compression = "gzip"
        case ARCHIVE_FILTER_ZSTD: compression = "zstd"
        case ARCHIVE_FILTER_XZ: compression = "xz"
        case ARCHIVE_FILTER_BZIP2: compression = "bzip2"
        default: compression = "none"
        }
    }

    deinit {
        // `stop()` or `finish()` has joined the threads before the last reference goes away.
        if let reader { archive_read_free(reader) }
        for c in [canFill, canTake, canHash, canHashFiles] {
            pthread_cond_destroy(c)
            c.deallocate()
        }
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        lengths.deallocate()
        RingMemory.shared.give(input: input, slots: slots)
        zeros?.deallocate()
    }

    /// gzip, zstd, xz and bzip2 magic numbers. A match only selects libarchive's decoding path, whose own
    /// bidders then confirm the format; anything else is taken as a plain tar.
    private static func looksCompressed(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
        let b = UnsafeRawBufferPointer(start: p, count: min(count, 6))
        func starts(_ magic: [UInt8]) -> Bool { b.count >= magic.count && zip(b, magic).allSatisfy { $0 == $1 } }
        return starts([0x1F, 0x8B]) || starts([0x28, 0xB5, 0x2F, 0xFD])
            || starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) || starts([0x42, 0x5A, 0x68])
    }

    static func errorText(_ a: OpaquePointer) -> String {
        if let s = archive_error_string(a) { return String(cString: s) }
        let e = archive_errno(a)
        return e != 0 ? String(cString: strerror(e)) : "unknown libarchive error"
    }

    /// The decompressor's error; a failed read() of the input is reported as such.
    private func decompressorError(_ r: OpaquePointer) -> String {
        inputErrno != 0 ? "read: \(String(cString: strerror(inputErrno)))" : LayerStream.errorText(r)
    }

    /// libarchive read callback of the decompressor: the sniffed prefix first, then the descriptor.
    private static let inputCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?,
                                                      UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { _, client, out in
        guard let client, let out else { return -1 }
        return Unmanaged<LayerStream>.fromOpaque(client).takeUnretainedValue().readInput(out)
    }

    private func readInput(_ out: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        out.pointee = UnsafeRawPointer(input)
        if prefixCount > 0 {
            defer { prefixCount = 0 }
            return prefixCount
        }
        while true {
            let n = read(fd, input, LayerStream.slotSize)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            inputErrno = errno
            return -1
        }
    }

    // MARK: - Threads

    /// Starts the producer and the hashing threads (the stream hasher only when the diff_id is not known).
    func start() throws {
        let me = Unmanaged.passUnretained(self).toOpaque()
        func spawn(_ what: String, _ body: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?) throws -> pthread_t {
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, body, me)
            if rc != 0 {
                stop()
                throw CASError.io("pthread_create", "layer \(what) thread", rc)
            }
            return tid
        }
        producerThread = try spawn("decompressor") { arg in
            if let arg { Unmanaged<LayerStream>.fromOpaque(arg).takeUnretainedValue().produce() }
            return nil
        }
        if knownDiffID == nil {
            streamHashThread = try spawn("hashing") { arg in
                if let arg { Unmanaged<LayerStream>.fromOpaque(arg).takeUnretainedValue().hashStream() }
                return nil
            }
        }
        fileHashThread = try spawn("file hashing") { arg in
            if let arg { Unmanaged<LayerStream>.fromOpaque(arg).takeUnretainedValue().hashFiles() }
            return nil
        }
    }

    /// Waits for a slot every other thread is done with; nil once stopped.
    private func acquireSlot() -> Int? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let n = LayerStream.slotCount
        while (produced - released >= n || produced - hashed >= n || produced - fileSlotsDone >= n) && !cancelled {
            pthread_cond_wait(canFill, mutex)
        }
        return cancelled ? nil : produced % n
    }

    /// Hands over a filled slot; with `atEnd`, also the end of the stream (or its failure).
    private func publish(slot: Int, count: Int, atEnd: Bool, failure: String?) {
        pthread_mutex_lock(mutex)
        if count > 0 {
            lengths[slot] = count
            produced += 1
            if knownDiffID != nil { hashed = produced }
        }
        if atEnd {
            failureText = failure
            finished = true
        }
        pthread_cond_signal(canTake)
        pthread_cond_signal(canHash)
        pthread_mutex_unlock(mutex)
    }

    private func produce() {
        if let reader {
            produceDecompressed(reader)
        } else {
            produceDirect()
        }
    }

    /// Uncompressed input: read() straight into the slots, the sniffed prefix first.
    private func produceDirect() {
        var atEnd = false
        while !atEnd {
            guard let slot = acquireSlot() else { return }
            let base = slots + slot * LayerStream.slotSize
            var filled = 0
            var failure: String?
            if prefixCount > 0 {
                base.copyMemory(from: input, byteCount: prefixCount)
                filled = prefixCount
                prefixCount = 0
            }
            while filled < LayerStream.slotSize {
                let n = read(fd, base + filled, LayerStream.slotSize - filled)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "read: \(String(cString: strerror(errno)))"
                    atEnd = true
                    break
                }
                if n == 0 {
                    atEnd = true
                    break
                }
                filled += n
            }
            publish(slot: slot, count: filled, atEnd: atEnd, failure: failure)
        }
    }

    /// Compressed input: the filter's output blocks are copied into slots; a block larger than what is
    /// left of a slot continues in the next one. On a decompression error the data before it is still
    /// delivered, so the tar reader gets as far as it can and the error names the entry that was cut.
    private func produceDecompressed(_ reader: OpaquePointer) {
        var pending: UnsafeRawPointer?
        var pendingCount = 0
        var atEnd = false
        var total: Int64 = 0
        while !atEnd {
            guard let slot = acquireSlot() else { return }
            let base = slots + slot * LayerStream.slotSize
            var filled = 0
            var failure: String?
            while filled < LayerStream.slotSize {
                if let limit = outputLimit, total + Int64(filled) > limit {
                    failure = "it expands to more than \(limit) bytes"
                    atEnd = true
                    break
                }
                if pendingCount == 0 {
                    var block: UnsafeRawPointer?
                    var size = 0
                    var offset: Int64 = 0
                    let r = archive_read_data_block(reader, &block, &size, &offset)
                    if r == ARCHIVE_EOF {
                        atEnd = true
                        break
                    }
                    if r != ARCHIVE_OK && r != ARCHIVE_WARN {
                        failure = decompressorError(reader)
                        atEnd = true
                        break
                    }
                    pending = block
                    pendingCount = block == nil ? 0 : size
                    continue
                }
                guard let src = pending else { break }
                let n = min(pendingCount, LayerStream.slotSize - filled)
                (base + filled).copyMemory(from: src, byteCount: n)
                filled += n
                pending = src + n
                pendingCount -= n
            }
            total += Int64(filled)
            publish(slot: slot, count: filled, atEnd: atEnd, failure: failure)
        }
    }

    /// The stream hashing thread: every produced slot, in order, into the diff_id.
    private func hashStream() {
        while true {
            pthread_mutex_lock(mutex)
            while hashed == produced && !finished && !cancelled {
                pthread_cond_wait(canHash, mutex)
            }
            if cancelled || hashed == produced {
                pthread_mutex_unlock(mutex)
                return
            }
            let slot = hashed % LayerStream.slotCount
            let count = lengths[slot]
            pthread_mutex_unlock(mutex)

            streamHasher.update(UnsafeRawBufferPointer(start: slots + slot * LayerStream.slotSize, count: count))

            pthread_mutex_lock(mutex)
            hashed += 1
            pthread_cond_signal(canFill)
            pthread_mutex_unlock(mutex)
        }
    }

    /// The file hashing thread: the consumer's file jobs, batch by batch, into `digests`.
    private func hashFiles() {
        while true {
            pthread_mutex_lock(mutex)
            while batches.isEmpty && !noMoreFileJobs && !cancelled {
                pthread_cond_wait(canHashFiles, mutex)
            }
            if cancelled || batches.isEmpty {
                pthread_mutex_unlock(mutex)
                return
            }
            let taken = batches
            batches.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(mutex)

            for b in taken {
                for job in b.jobs {
                    switch job {
                    case .begin:
                        break
                    case .data(let p, let n):
                        fileHasher.update(UnsafeRawBufferPointer(start: p, count: n))
                    case .copied(let bytes):
                        fileHasher.update(bytes)
                    case .zeros(let count):
                        hashZeros(count)
                    case .end:
                        digests.append(fileHasher.finish())
                    }
                }
                pthread_mutex_lock(mutex)
                fileSlotsDone = b.slotsReleased
                pthread_cond_signal(canFill)
                pthread_mutex_unlock(mutex)
            }
        }
    }

    private func hashZeros(_ count: Int64) {
        let chunk = 1 << 16
        let z: UnsafeMutableRawBufferPointer
        if let existing = zeros {
            z = existing
        } else {
            z = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
            z.initializeMemory(as: UInt8.self, repeating: 0)
            zeros = z
        }
        var left = count
        while left > 0 {
            let n = Int(min(left, Int64(chunk)))
            fileHasher.update(UnsafeRawBufferPointer(rebasing: z[0..<n]))
            left -= Int64(n)
        }
    }

    // MARK: - Consumer side (the unpacking thread)

    /// The next chunk of the uncompressed stream: count > 0 data, 0 end of stream, -1 failure (see
    /// `failure`). Gives back the chunk returned by the previous call, handing the file hasher the blocks
    /// queued from it first.
    func next() -> (UnsafeRawPointer?, Int) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if holding {
            holding = false
            released += 1
            batches.append((batch, released))
            batch.removeAll(keepingCapacity: true)
            pthread_cond_signal(canHashFiles)
            pthread_cond_signal(canFill)
        }
        while consumed == produced && !finished {
            pthread_cond_wait(canTake, mutex)
        }
        if consumed < produced {
            let slot = consumed % LayerStream.slotCount
            consumed += 1
            holding = true
            return (UnsafeRawPointer(slots + slot * LayerStream.slotSize), lengths[slot])
        }
        return (nil, failureText == nil ? 0 : -1)
    }

    /// Starts the digest of the next regular file; returns its number (the index into `finish()`'s digests).
    func beginFile() -> Int {
        batch.append(.begin)
        filesBegun += 1
        return filesBegun - 1
    }

    /// Queues a block of the current file's content for hashing. A block inside the slot the consumer
    /// holds is queued by address; a block in libarchive's own buffer (a block that straddled two slots)
    /// is copied, since that buffer changes on the next read.
    func fileData(_ p: UnsafeRawPointer, _ count: Int) {
        let start = UnsafeRawPointer(slots)
        if p >= start && p + count <= start + LayerStream.slotSize * LayerStream.slotCount {
            batch.append(.data(p, count))
        } else {
            batch.append(.copied(Array(UnsafeRawBufferPointer(start: p, count: count))))
        }
    }

    /// Queues a run of zero bytes (a hole of a sparse file) of the current file.
    func fileZeros(_ count: Int64) {
        batch.append(.zeros(count))
    }

    func endFile() {
        batch.append(.end)
    }

    /// The decompressor's error, if it failed (then the tar reader's own error is only a consequence).
    var failure: String? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return failureText
    }

    /// Reads what the tar reader did not need (the zero blocks and record padding after the end-of-archive
    /// marker still belong to the diff_id), waits for all threads, and returns the diff_id and the digests
    /// of the files in `beginFile()` order.
    func finish() throws -> (diffID: Digest, fileDigests: [Digest]) {
        while true {
            let (_, n) = next()
            if n <= 0 { break }
        }
        pthread_mutex_lock(mutex)
        if !batch.isEmpty {
            batches.append((batch, released))
            batch.removeAll()
        }
        noMoreFileJobs = true
        pthread_cond_signal(canHashFiles)
        pthread_mutex_unlock(mutex)
        join()
        if let f = failureText {
            throw CASError.badLayer("\(sourceName): \(f) (the layer is truncated or corrupt; pull the image again)")
        }
        guard digests.count == filesBegun else {
            throw CASError.internalFailure("layer unpacker hashed \(digests.count) of \(filesBegun) files")
        }
        return (knownDiffID ?? streamHasher.finish(), digests)
    }

    /// Stops every thread (if still running) and waits for them. Safe to call more than once.
    func stop() {
        pthread_mutex_lock(mutex)
        cancelled = true
        for c in [canFill, canTake, canHash, canHashFiles] { pthread_cond_broadcast(c) }
        pthread_mutex_unlock(mutex)
        join()
    }

    private func join() {
        for t in [producerThread, streamHashThread, fileHashThread] {
            if let t { pthread_join(t, nil) }
        }
        producerThread = nil
        streamHashThread = nil
        fileHashThread = nil
    }

    /// libarchive read callback for the tar reader; the client data is an unretained LayerStream.
    static let readCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?,
                                             UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int = { _, client, out in
        guard let client, let out else { return -1 }
        let (p, n) = Unmanaged<LayerStream>.fromOpaque(client).takeUnretainedValue().next()
        out.pointee = p
        return n
    }
}

/// The input buffer and slot ring of finished streams, kept for the next stream of this process: a
/// pull unpacks several layers, and fresh 9 MiB buffers cost a page fault per 4 KiB on first use.
final class RingMemory: @unchecked Sendable {
    // @unchecked: `free` is used only with `lock` held.
    static let shared = RingMemory()
    /// Rings kept at most (parallel pulls use about as many at once).
    private static let keep = 4
    private let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let m = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(m, nil)
        return m
    }()
    private var free: [(input: UnsafeMutableRawPointer, slots: UnsafeMutableRawPointer)] = []

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    func take() -> (UnsafeMutableRawPointer, UnsafeMutableRawPointer) {
        if let r = locked({ free.popLast() }) { return (r.input, r.slots) }
        return (UnsafeMutableRawPointer.allocate(byteCount: LayerStream.slotSize, alignment: 4096),
                UnsafeMutableRawPointer.allocate(byteCount: LayerStream.slotSize * LayerStream.slotCount, alignment: 4096))
    }

    func give(input: UnsafeMutableRawPointer, slots: UnsafeMutableRawPointer) {
        let kept = locked { () -> Bool in
            guard free.count < RingMemory.keep else { return false }
            free.append((input, slots))
            return true
        }
        if !kept {
            input.deallocate()
            slots.deallocate()
        }
    }
}
