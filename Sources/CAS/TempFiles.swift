// Names of temporary files and directories in STORE/tmp that record their owner (pid and host), and
// the sweep that removes the ones whose owner is gone, so a crash leaves nothing behind for long.
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// Who this process is, as recorded in temp file names and pending refs.
public enum ProcessIdentity {
    /// This host's name, reduced to [A-Za-z0-9._-] so it can sit in file names and holder names.
    public static let hostname: String = {
        var buf = [CChar](repeating: 0, count: 256)
        let raw = gethostname(&buf, buf.count - 1) == 0
            ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let clean = String(String.UnicodeScalarView(raw.unicodeScalars.prefix(64).map {
            isSafeNameScalar($0) ? $0 : "_"
        }))
        return clean.isEmpty ? "localhost" : clean
    }()

    /// This host as recorded in temp names and pending refs: the hostname plus the pid namespace
    /// ("node1+4026531836"), so that processes in another container on the same host (whose pids
    /// mean something else) are treated like another host, never as dead.
    public static let host: String = {
        var st = stat()
        guard stat("/proc/self/ns/pid", &st) == 0 else { return hostname }
        return "\(hostname)+\(st.st_ino)"
    }()

    public static var pid: Int32 { getpid() }

    static func isSafeNameScalar(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "-" || c == "_"
    }

    /// Whether a process recorded as (host, pid) is certainly gone: only decidable on the same host.
    public static func isDead(host: String, pid: Int32) -> Bool {
        host == self.host && ud_pid_alive(pid) == 0
    }
}

/// A temp name "<kind>.<pid>.<random>@<host>": the owner can be read back from the name alone.
struct TempName: Equatable {
    var kind: String
    var pid: Int32
    var host: String

    /// Temp files older than this are swept even when their owner cannot be checked (other host).
    static let maxAge: Int64 = 24 * 3600

    static func make(_ kind: String) -> String {
        let r = String(UInt64.random(in: 0...UInt64.max), radix: 36)
        return "\(kind).\(ProcessIdentity.pid).\(r)@\(ProcessIdentity.host)"
    }

    static func parse(_ name: String) -> TempName? {
        guard let at = name.firstIndex(of: "@") else { return nil }
        let host = String(name[name.index(after: at)...])
        let parts = name[..<at].split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !host.isEmpty, let pid = Int32(parts[1]), pid > 0 else { return nil }
        return TempName(kind: String(parts[0]), pid: pid, host: host)
    }

    /// Whether a temp entry named `name`, last modified at `mtime`, can be removed: its owner is dead on
    /// this host, or it is older than `maxAge` (owner on another host, or a name we do not know).
    static func isStale(name: String, mtime: Int64, now: Int64) -> Bool {
        if let t = parse(name), ProcessIdentity.isDead(host: t.host, pid: t.pid) { return true }
        return now - mtime > maxAge
    }
}

enum TempSweeper {
    /// Stale entries of `dir` (see TempName.isStale), as full paths.
    static func staleEntries(in dir: String) throws -> [String] {
        let now = Int64(time(nil))
        var out = [String]()
        for name in try FileIO.listDirectory(dir) {
            let path = dir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if TempName.isStale(name: name, mtime: Int64(st.st_mtim.tv_sec), now: now) { out.append(path) }
        }
        return out.sorted()
    }

    /// Removes the stale entries of `dir`; returns how many were removed. Failures are skipped: an
    /// entry that cannot be removed now is tried again next time.
    @discardableResult
    static func sweep(_ dir: String) -> Int {
        guard let stale = try? staleEntries(in: dir) else { return 0 }
        var n = 0
        for p in stale where (try? FileIO.removeTree(p)) != nil { n += 1 }
        return n
    }
}
