// UTC timestamps of records (image.json, container.json, ELF patch records), formatted with gmtime_r:
// Foundation's ISO8601DateFormatter starts ICU and a time zone, about 1.5 ms of every pull and create.
import Foundation

enum Timestamp {
    /// `date` as "2026-12-07T14:19:00Z", the form ISO8601DateFormatter writes by default (whole seconds).
    static func utc(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        guard gmtime_r(&seconds, &t) != nil else { return "1970-01-01T00:00:00Z" }
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T"
            + "\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2))Z"
    }
}
