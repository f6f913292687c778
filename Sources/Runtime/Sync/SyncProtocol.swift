// The sync protocol on a byte stream: framed messages, each with a CRC-32C check value over its
// header and over its payload, a hello each way with the protocol version, zstd metadata frames
// (JSON inside) and raw blob chunks. See SyncSession.swift for the order of the exchange.
import CAS
import CShim
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum SyncProtocol {
    /// The version this udocker speaks. Both ends must speak the same.
    public static let version = 1
    /// Test hook: `sync-serve` claims this version instead (UDOCKER_SYNC_SERVE_PROTOCOL), so a test
    /// can show the refusal of a mismatch without two builds.
    public static let serveVersionVariable = "UDOCKER_SYNC_SERVE_PROTOCOL"
    /// Blob content travels in chunks of at most this size.
    static let chunkSize = 1 << 20
    /// The largest payload a frame may announce (a metadata frame of a very large repository).
    static let maxPayload = 64 << 20
}

/// Frame types. Values never change meaning; a new version adds types.
enum FrameType: UInt8 {
    case hello = 1
    /// Initiator to far end: what the far end does (SyncRequest).
    case request = 2
    /// Sender to receiver: every object, image and container of the selection (SyncOffer).
    case offer = 3
    /// Receiver to sender: the objects it lacks, with the offset of a partial blob (SyncWant).
    case want = 4
    /// Sender to receiver: an object follows (binary: 32-byte digest, u64 offset, u64 size).
    case object = 5
    /// Bytes of the current object.
    case chunk = 6
    /// Sender to receiver, after the last object: record these images and containers (SyncRefs).
    case refs = 7
    /// Receiver to sender: what happened (SyncResult).
    case report = 8
    /// Either way: this end failed (SyncFailure); the session is over.
    case failure = 9
}

/// Frame flags.
enum FrameFlags {
    static let zstd: UInt8 = 1
}

struct SyncHello: Codable, Sendable {
    var magic = "udocker-sync"
    var protocolVersion: Int
    var udocker: String
}

/// What the initiator asks of the far end.
struct SyncRequest: Codable, Sendable {
    enum Role: String, Codable, Sendable { case send, receive }
    /// What the far end does: send (sync --from) or receive (sync TARGET).
    var farEnd: Role
    var selection: SyncSelection
    var arrival: SyncArrivalOptions
    var dryRun: Bool
    /// Create the far repository when it does not exist (a receiving far end, not a dry run).
    var create: Bool
}

struct SyncOffer: Codable, Sendable {
    var objects: [SyncObject]
    var images: [SyncImage]
    var containers: [SyncContainer]
}

struct SyncWant: Codable, Sendable {
    struct Wanted: Codable, Sendable, Equatable {
        var digest: Digest
        /// Bytes of a partial blob the receiver holds already: the sender starts there.
        var offset: Int64
    }
    var objects: [Wanted]
}

struct SyncRefs: Codable, Sendable {
    var images: [String]
    var containers: [String]
}

/// One image or container that arrived, with how many of its objects travelled.
public struct SyncedItem: Codable, Sendable, Equatable {
    public var name: String
    public var objectsSent: Int
    public var objectsPresent: Int
}

/// What a sync did: the report and what arrived, name by name.
public struct SyncResult: Codable, Sendable, Equatable {
    public var report: SyncReport
    public var images: [SyncedItem]
    public var containers: [SyncedItem]
    /// For a dry run: the objects that would travel (digest, bytes from the offset on).
    public var wouldSend: [SyncObject]
    public var dryRun: Bool
}

struct SyncFailure: Codable, Sendable {
    var message: String
}

/// A received frame. `payload` is valid until the next read.
struct Frame {
    var type: FrameType
    var flags: UInt8
    var payload: UnsafeRawBufferPointer
}

/// Both directions of a sync connection: blocking reads and writes on two descriptors, counted.
/// Used from one thread.
final class SyncConnection {
    let readFD: Int32
    let writeFD: Int32
    /// What the connection is, for messages ("the far end", a command line).
    let peer: String
    private(set) var bytesRead: Int64 = 0
    private(set) var bytesWritten: Int64 = 0
    private var inBuffer: UnsafeMutableRawBufferPointer
    private var inStart = 0, inEnd = 0
    private var payload: UnsafeMutableRawBufferPointer
    /// Called when the peer's stream ends or breaks, to name why (the far end's exit status).
    var describeEnd: () -> String = { "" }

    init(readFD: Int32, writeFD: Int32, peer: String) {
        self.readFD = readFD; self.writeFD = writeFD; self.peer = peer
        inBuffer = .allocate(byteCount: 256 << 10, alignment: 16)
        payload = .allocate(byteCount: SyncProtocol.chunkSize + 64, alignment: 16)
    }

    deinit {
        inBuffer.deallocate()
        payload.deallocate()
    }

    var bytesOnWire: Int64 { bytesRead + bytesWritten }

    // MARK: writing

    /// Writes one frame: header (type, flags, length, header check), payload, payload check.
    func send(_ type: FrameType, flags: UInt8 = 0, _ body: UnsafeRawBufferPointer) throws {
        guard body.count <= SyncProtocol.maxPayload else { throw RuntimeError.syncBadStream("a frame of \(body.count) bytes is too large to send") }
        var header = [UInt8](repeating: 0, count: 10)
        header[0] = type.rawValue
        header[1] = flags
        Self.putU32(&header, 2, UInt32(body.count))
        let hcrc = header.withUnsafeBytes { ud_crc32c(0, $0.baseAddress, 6) }
        Self.putU32(&header, 6, hcrc)
        var trailer = [UInt8](repeating: 0, count: 4)
        Self.putU32(&trailer, 0, body.count > 0 ? ud_crc32c(0, body.baseAddress, body.count) : 0)
        try header.withUnsafeBytes { h in
            try trailer.withUnsafeBytes { t in
                var iov = [iovec(iov_base: UnsafeMutableRawPointer(mutating: h.baseAddress), iov_len: h.count),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count),
                           iovec(iov_base: UnsafeMutableRawPointer(mutating: t.baseAddress), iov_len: t.count)]
                try writeVector(&iov)
            }
        }
    }

    func send(_ type: FrameType, bytes: [UInt8], flags: UInt8 = 0) throws {
        try bytes.withUnsafeBytes { try send(type, flags: flags, $0) }
    }

    /// A metadata frame: JSON, zstd-compressed.
    func send<T: Encodable>(_ type: FrameType, json value: T) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try e.encode(value) } catch { throw RuntimeError.internalFailure("cannot encode a sync frame: \(error)") }
        try send(type, bytes: try SyncCompression.compress(Array(data)), flags: FrameFlags.zstd)
    }

    private func writeVector(_ iov: inout [iovec]) throws {
        var i = 0
        while i < iov.count {
            if iov[i].iov_len == 0 { i += 1; continue }
            let n = iov.withUnsafeMutableBufferPointer { b in
                Glibc.writev(writeFD, b.baseAddress! + i, Int32(b.count - i))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.syncConnectionLost("while sending to \(peer) (\(String(cString: strerror(errno))))\(describeEnd())")
            }
            bytesWritten += Int64(n)
            var left = n
            while left > 0 && i < iov.count {
                if left >= iov[i].iov_len { left -= iov[i].iov_len; i += 1 } else {
                    iov[i].iov_base = iov[i].iov_base.map { $0 + left }
                    iov[i].iov_len -= left
                    left = 0
                }
            }
        }
    }

    private var writeOpen = true, readOpen = true

    /// Closes the sending side, so the peer reads the end of the stream.
    func closeWrite() {
        if writeOpen { _ = close(writeFD) }
        writeOpen = false
    }

    /// Closes the receiving side: a peer still sending gets EPIPE instead of blocking forever.
    func closeRead() {
        if readOpen { _ = close(readFD) }
        readOpen = false
    }

    // MARK: reading

    /// Reads the next frame; its checks are verified. `eofOK`: nil at a clean end of stream.
    func receive(eofOK: Bool = false) throws -> Frame? {
        var header = [UInt8](repeating: 0, count: 10)
        let got = try header.withUnsafeMutableBytes { try readExactly($0, allowEOF: true) }
        if got == 0 {
            if eofOK { return nil }
            throw RuntimeError.syncConnectionLost("when \(peer) closed the connection\(describeEnd())")
        }
        if got < 10 { throw RuntimeError.syncConnectionLost("in the middle of a frame from \(peer)\(describeEnd())") }
        let hcrc = header.withUnsafeBytes { ud_crc32c(0, $0.baseAddress, 6) }
        guard hcrc == Self.getU32(header, 6) else {
            throw RuntimeError.syncBadStream("a frame header from \(peer) fails its check value" + Self.printable(header))
        }
        guard let type = FrameType(rawValue: header[0]) else {
            throw RuntimeError.syncBadStream("frame type \(header[0]) from \(peer) is unknown")
        }
        let length = Int(Self.getU32(header, 2))
        guard length <= SyncProtocol.maxPayload else { throw RuntimeError.syncBadStream("a frame from \(peer) announces \(length) bytes") }
        if length + 4 > payload.count {
            payload.deallocate()
            payload = .allocate(byteCount: length + 4, alignment: 16)
        }
        let body = UnsafeMutableRawBufferPointer(rebasing: payload[0..<(length + 4)])
        if try readExactly(body, allowEOF: false) < body.count {
            throw RuntimeError.syncConnectionLost("in the middle of a frame from \(peer)\(describeEnd())")
        }
        let data = UnsafeRawBufferPointer(rebasing: payload[0..<length])
        let crc = length > 0 ? ud_crc32c(0, data.baseAddress, length) : 0
        let expected = UInt32(payload[length]) << 24 | UInt32(payload[length + 1]) << 16 | UInt32(payload[length + 2]) << 8 | UInt32(payload[length + 3])
        guard crc == expected else {
            throw RuntimeError.syncBadStream("a \(type) frame of \(length) bytes from \(peer) fails its check value")
        }
        return Frame(type: type, flags: header[1], payload: data)
    }

    /// Reads a frame that must be of `type`; a failure frame becomes the far end's error.
    func expect(_ type: FrameType) throws -> Frame {
        guard let f = try receive() else { throw RuntimeError.syncConnectionLost("early\(describeEnd())") }
        if f.type == .failure { throw RuntimeError.syncFarEndFailed(try Self.decode(SyncFailure.self, f).message) }
        guard f.type == type else { throw RuntimeError.syncBadStream("expected a \(type) frame from \(peer), got \(f.type)") }
        return f
    }

    func expect<T: Decodable>(_ type: FrameType, as: T.Type) throws -> T {
        try Self.decode(T.self, try expect(type))
    }

    static func decode<T: Decodable>(_ t: T.Type, _ f: Frame) throws -> T {
        let bytes = f.flags & FrameFlags.zstd != 0 ? try SyncCompression.decompress(f.payload) : Array(f.payload)
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch {
            throw RuntimeError.syncBadStream("a \(f.type) frame does not hold what it should (\(error))")
        }
    }

    /// Fills `buffer`; returns the bytes read (less only at the end of the stream).
    private func readExactly(_ buffer: UnsafeMutableRawBufferPointer, allowEOF: Bool) throws -> Int {
        var done = 0
        while done < buffer.count {
            if inStart < inEnd {
                let n = min(inEnd - inStart, buffer.count - done)
                (buffer.baseAddress! + done).copyMemory(from: inBuffer.baseAddress! + inStart, byteCount: n)
                inStart += n; done += n
                continue
            }
            // Large reads go straight to the destination; small ones through the buffer.
            let direct = buffer.count - done >= inBuffer.count / 2
            let target = direct ? buffer.baseAddress! + done : inBuffer.baseAddress!
            let room = direct ? buffer.count - done : inBuffer.count
            let n = Glibc.read(readFD, target, room)
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.syncConnectionLost("while reading from \(peer) (\(String(cString: strerror(errno))))\(describeEnd())")
            }
            if n == 0 { return done }
            bytesRead += Int64(n)
            if direct { done += n } else { inStart = 0; inEnd = n }
        }
        return done
    }

    // MARK: helpers

    static func putU32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        b[at] = UInt8(v >> 24); b[at + 1] = UInt8((v >> 16) & 0xff); b[at + 2] = UInt8((v >> 8) & 0xff); b[at + 3] = UInt8(v & 0xff)
    }

    static func getU32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func putU64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8((v >> (56 - 8 * UInt64(i))) & 0xff) }
    }

    static func getU64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(b[at + i]) }
        return v
    }

    /// " (it starts with "...")" when the bytes look like text: a far end that printed an error or
    /// a login banner instead of speaking the protocol.
    static func printable(_ bytes: [UInt8]) -> String {
        let text = bytes.prefix { $0 >= 0x20 && $0 < 0x7f || $0 == 0x0a }
        return text.count >= 4 ? " (it starts with \"\(String(decoding: text, as: UTF8.self))\": is udocker on the far end this version, and does its login print nothing?)" : ""
    }
}

// MARK: the hello and the object header

extension SyncConnection {
    /// Sends our hello, reads the far end's, and refuses a different protocol version.
    func exchangeHello(claiming version: Int = SyncProtocol.version) throws {
        let hello = SyncHello(protocolVersion: version, udocker: UdockerVersion.implementation)
        let data: Data
        do { data = try JSONEncoder().encode(hello) } catch { throw RuntimeError.internalFailure("cannot encode the sync hello: \(error)") }
        try send(.hello, bytes: Array(data))
        try receiveHello(local: version)
    }

    private func receiveHello(local: Int) throws {
        guard let f = try receive() else { throw RuntimeError.syncConnectionLost("before the hello\(describeEnd())") }
        guard f.type == .hello else { throw RuntimeError.syncBadStream("\(peer) did not start with a hello") }
        let far: SyncHello
        do { far = try JSONDecoder().decode(SyncHello.self, from: Data(Array(f.payload))) } catch {
            throw RuntimeError.syncBadStream("the hello of \(peer) is not one udocker understands")
        }
        guard far.magic == "udocker-sync" else { throw RuntimeError.syncBadStream("\(peer) is not a udocker sync server") }
        guard far.protocolVersion == local else { throw RuntimeError.syncProtocolMismatch(far: far.protocolVersion, local: local) }
    }

    func sendObjectHeader(_ digest: Digest, offset: UInt64, size: UInt64) throws {
        var b = [UInt8](repeating: 0, count: 48)
        b.replaceSubrange(0..<32, with: digest.rawBytes)
        Self.putU64(&b, 32, offset)
        Self.putU64(&b, 40, size)
        try send(.object, bytes: b)
    }

    static func objectHeader(_ f: Frame) throws -> (digest: Digest, offset: UInt64, size: UInt64) {
        guard f.payload.count == 48 else {
            throw RuntimeError.syncBadStream("an object header is malformed")
        }
        return (Digest(bytes: f.payload[0..<32]), getU64(f.payload, 32), getU64(f.payload, 40))
    }

    /// Tells the peer this end failed (best effort: the connection may be gone already).
    func sendFailure(_ error: any Error) {
        try? send(.failure, json: SyncFailure(message: String(describing: error)))
    }
}
