// The sync protocol's frames on a real pipe: the CRC-32C check value, every single-byte change of a
// frame refused, zstd metadata frames, the hello's version check.
@testable import Runtime
import CAS
import CShim
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(2))) struct SyncProtocolTests {
    /// A connection whose writes land in a pipe it also reads from.
    func loop() throws -> SyncConnection {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        var size: Int32 = 1 << 20
        _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, size)
        size = 0
        return SyncConnection(readFD: fds[0], writeFD: fds[1], peer: "the test")
    }

    @Test func crc32cHasTheCastagnoliCheckValue() {
        let v = Array("123456789".utf8).withUnsafeBytes { ud_crc32c(0, $0.baseAddress, $0.count) }
        #expect(v == 0xE306_9283)
        // Continuing over two parts gives the same value as one pass.
        let a = Array("12345".utf8).withUnsafeBytes { ud_crc32c(0, $0.baseAddress, $0.count) }
        let b = Array("6789".utf8).withUnsafeBytes { ud_crc32c(a, $0.baseAddress, $0.count) }
        #expect(b == v)
    }

    @Test func framesRoundTripAndMetadataIsCompressed() throws {
        let c = try loop()
        let offer = SyncWant(objects: (0..<200).map { i in
            .init(digest: Digest(bytes: [UInt8](repeating: UInt8(i % 7), count: 32)), offset: Int64(i))
        })
        try c.send(.want, json: offer)
        let written = c.bytesWritten
        let back = try c.expect(.want, as: SyncWant.self)
        #expect(back.objects == offer.objects)
        // 200 objects of JSON (about 100 bytes each) compress well.
        #expect(written < 200 * 100 / 4, "\(written) bytes on the wire")
        try c.send(.chunk, bytes: [1, 2, 3])
        let f = try #require(try c.receive())
        #expect(f.type == .chunk && Array(f.payload) == [1, 2, 3])
    }

    @Test func everyByteOfAFrameIsCovered() throws {
        // Build one frame's bytes, then read it back with each byte changed in turn.
        let c = try loop()
        try c.send(.chunk, bytes: Array(0..<40))
        var frame = [UInt8](repeating: 0, count: Int(c.bytesWritten))
        _ = frame.withUnsafeMutableBytes { read(c.readFD, $0.baseAddress, $0.count) }
        for i in 0..<frame.count {
            let d = try loop()
            var bad = frame
            bad[i] ^= 0x10
            _ = bad.withUnsafeBytes { write(d.writeFD, $0.baseAddress, $0.count) }
            d.closeWrite()
            var refused = false
            do { _ = try d.receive() } catch RuntimeError.syncBadStream, RuntimeError.syncConnectionLost { refused = true }
            #expect(refused, "a change of byte \(i) was not noticed")
        }
    }

    @Test func helloRefusesAnotherVersionAndGarbage() throws {
        // Two connections on two pipes, as the two ends: the far end's hello (version 2) is
        // waiting when ours is exchanged.
        var ab: [Int32] = [-1, -1], ba: [Int32] = [-1, -1]
        try #require(pipe(&ab) == 0 && pipe(&ba) == 0)
        let here = SyncConnection(readFD: ba[0], writeFD: ab[1], peer: "the far end")
        let far = SyncConnection(readFD: ab[0], writeFD: ba[1], peer: "the initiator")
        try far.send(.hello, bytes: Array(#"{"magic":"udocker-sync","protocolVersion":2,"udocker":"9.9"}"#.utf8))
        var message = ""
        do { try here.exchangeHello() } catch let e as RuntimeError { message = e.description }
        #expect(message == "far end speaks sync protocol 2, this udocker speaks 1: use the same udocker version on both hosts")

        let d = try loop()
        _ = Array("Error: invalid command\n".utf8).withUnsafeBytes { write(d.writeFD, $0.baseAddress, $0.count) }
        d.closeWrite()
        do { _ = try d.receive(); Issue.record("garbage accepted") } catch let e as RuntimeError {
            #expect(e.description.contains("Error: inv"), "\(e)")
        }
    }
}
