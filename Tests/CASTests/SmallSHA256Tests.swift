// The Swift SHA-256 that names run's files agrees with libcrypto's on every length around its
// block and padding boundaries, and on the known answers.
import Testing
@testable import CAS

@Suite struct SmallSHA256Tests {
    @Test func agreesWithLibcrypto() throws {
        var rng = SystemRandomNumberGenerator()
        for n in Array(0...200) + [447, 448, 511, 512, 1000, 4095, 4096, 16383, 16384] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let h = try SHA256Hasher()
            h.update(bytes)
            #expect(Digest(bytes: SmallSHA256.hash(bytes)) == h.finish(), "length \(n)")
        }
    }

    @Test func knownAnswers() {
        #expect(Digest(bytes: SmallSHA256.hash([])).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest(bytes: SmallSHA256.hash(Array("abc".utf8))).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
