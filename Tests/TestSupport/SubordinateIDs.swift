// The test user's subordinate uid and gid ranges (/etc/subuid, /etc/subgid): the first id of each is the
// owner udocker gives a sealed store's files.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public enum SubordinateIDs {
    /// The first subordinate uid of the user running the tests, or nil when /etc/subuid gives none.
    public static var firstUID: UInt32? { first(in: "/etc/subuid") }
    /// The first subordinate gid of the user running the tests, or nil when /etc/subgid gives none.
    public static var firstGID: UInt32? { first(in: "/etc/subgid") }

    /// The start of the first range in `file` whose owner field is this user's name or uid.
    public static func first(in file: String) -> UInt32? {
        guard let bytes = try? FileIO.readFile(file) else { return nil }
        let uid = getuid()
        var names = [String(uid)]
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pw, &buf, buf.count, &result) == 0, let r = result, let n = r.pointee.pw_name {
            names.append(String(cString: n))
        }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 3, names.contains(String(f[0])), let start = UInt32(f[1]), let count = UInt32(f[2]), count > 0 else { continue }
            return start
        }
        return nil
    }
}
