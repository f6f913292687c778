// Unpacking a layer while its blob is still being downloaded: the bytes go to the blob writer and,
// through a socket pair, to an unpacker thread; the layer is adopted only after the blob is verified.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One layer unpacked from the bytes of a download as they arrive. Feed it every byte written to the
/// blob, in order; after the blob is committed (verified and renamed into place), `finish` adopts
/// the layer. Nothing of it becomes visible before that: an unverified stream only ever fills a temp
/// directory in STORE/tmp, with the same protections against hostile entries as any unpack.
///
/// If the stream cannot be used (the download restarted from byte 0, the unpacker failed, the
/// caller gave up), `finish` returns nil and the caller unpacks from the committed blob file instead.
/// Use it from one thread (the download's); the unpacker runs on its own.
public final class StreamingUnpack: @unchecked Sendable {
    // @unchecked: `sendFD` and `alive` belong to the feeding thread; `outcome` is written by the
    // unpacker thread before it signals `done`, and read only after `done` was waited for.
    private let store: Store
    private let blob: Digest
    private let tempDir: String
    private var sendFD: Int32
    private var alive = true
    private var joined = false
    private var outcome: Result<LayerManifest, any Error> = .failure(CASError.internalFailure("unpack did not run"))
    private let done = DispatchSemaphore(value: 0)

    /// Starts the unpacker for `blob` (the digest the download will be verified against), of
    /// `expectedSize` bytes when known.
    init(store: Store, blob: Digest, expectedSize: UInt64?, maxExpansion: UInt64? = nil) throws {
        self.store = store
        self.blob = blob
        tempDir = store.layout.tmpDir + "/" + TempName.make("layer")
        try FileIO.mkdirs(tempDir + "/root")
        var fds: [Int32] = [-1, -1]
        if socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) != 0 {
            let e = errno
            try? FileIO.removeTree(tempDir)
            throw CASError.io("socketpair", tempDir, e)
        }
        // Room for a few of curl's chunks, so the download rarely waits for the unpacker.
        var size: Int32 = 1 << 20
        _ = setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        sendFD = fds[1]
        let receiveFD = fds[0]
        let root = tempDir + "/root"
        let name = blob.description
        // The bytes are not verified yet: a layer that expands beyond 100x its size (at least 1 GiB;
        // real layers rarely pass 10x) is left to the unpack of the verified blob, so a tampered
        // stream cannot fill the disk.
        let hundredfold = (expectedSize ?? UInt64(1) << 32).multipliedReportingOverflow(by: 100)
        let streamLimit = Int64(clamping: max(UInt64(1) << 30, hundredfold.overflow ? UInt64.max : hundredfold.partialValue))
        // The configured bound on a verified layer holds here too (the stream can only be stricter).
        let limit = maxExpansion.flatMap { m in expectedSize.map { min(streamLimit, Store.layerLimit(blobSize: $0, maxExpansion: m)) } }
            ?? streamLimit
        let thread = Thread { [self] in
            // The bytes are checked against `blob` before the layer is adopted, so an uncompressed
            // layer may take `blob` as its diff_id like a committed blob does.
            outcome = Result {
                try LayerUnpacker().unpack(fd: receiveFD, sourceName: name, into: root, verifiedBlobDigest: blob,
                                           outputLimit: limit)
            }
            // Closing our end makes a feed that is still sending fail at once instead of blocking.
            _ = close(receiveFD)
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit { abandon() }

    /// Passes the next bytes of the blob on. Never throws: a stream that fails is given up, and the
    /// layer is then unpacked from the blob file.
    public func feed(_ chunk: UnsafeRawBufferPointer) {
        guard alive, var p = chunk.baseAddress else { return }
        var left = chunk.count
        while left > 0 {
            let n = send(sendFD, p, left, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                stopFeeding()
                return
            }
            p += n
            left -= n
        }
    }

    /// The download started again from byte 0: what was streamed is no use.
    public func restart() { stopFeeding() }

    /// Call after the blob was committed: waits for the unpacker and adopts the layer, or returns
    /// nil when the stream was given up or the unpack failed (then nothing is left behind).
    public func finish() throws -> LayerManifest? {
        let usable = alive
        closeSend()
        join()
        guard usable, case .success(var m) = outcome else {
            try? FileIO.removeTree(tempDir)
            return nil
        }
        m.blobs = [blob]
        do { return try store.adoptLayer(tempDir: tempDir, manifest: m) } catch {
            try? FileIO.removeTree(tempDir)
            throw error
        }
    }

    /// Gives the stream up and removes what it unpacked (after a failed download or commit).
    public func abandon() {
        stopFeeding()
        join()
        if FileIO.exists(tempDir) { try? FileIO.removeTree(tempDir) }
    }

    private func stopFeeding() {
        alive = false
        closeSend()
    }

    private func closeSend() {
        if sendFD >= 0 {
            _ = close(sendFD)
            sendFD = -1
        }
    }

    private func join() {
        guard !joined else { return }
        closeSend()
        done.wait()
        joined = true
    }
}

extension Store {
    /// A streaming unpack of `blob`, which the caller is about to download, or nil when its layer
    /// (diff_id `diffID`, when known) is in the store already, so there is nothing to unpack.
    public func beginStreamingUnpack(blob: Digest, expectedSize: UInt64?, diffID: Digest?,
                                     maxExpansion: UInt64? = nil) throws -> StreamingUnpack? {
        if let diffID, try layerRecord(diffID: diffID) != nil { return nil }
        if try unpackedLayer(forBlob: blob) != nil { return nil }
        return try StreamingUnpack(store: self, blob: blob, expectedSize: expectedSize, maxExpansion: maxExpansion)
    }
}
