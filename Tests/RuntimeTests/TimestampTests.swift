// Records' timestamps read as they did when Foundation's ISO8601DateFormatter wrote them.
import Foundation
import Testing
@testable import Runtime

@Suite struct TimestampTests {
    @Test func sameTextAsISO8601DateFormatter() {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        // The epoch, a leap day, the last second of a year, a fraction (dropped), far years, now.
        let seconds: [Double] = [0, 951_782_400, 1_798_761_599, 1_796_652_000.999, 32_503_680_000, 4_102_444_799,
                                 Date().timeIntervalSince1970.rounded(.down)]
        for s in seconds {
            let d = Date(timeIntervalSince1970: s)
            #expect(Timestamp.utc(d) == f.string(from: d), "\(s)")
        }
        #expect(Timestamp.utc(Date(timeIntervalSince1970: 951_782_400)) == "2000-02-29T00:00:00Z")
    }
}
