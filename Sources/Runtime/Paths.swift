// Path text helpers shared by configuration and repositories: absolute paths and a normal form
// for comparing them (no filesystem access, so symlinks are not resolved).
#if canImport(Glibc)
import Glibc
#endif

public enum Paths {
    /// The current working directory, or "/" if it cannot be read (e.g. it was removed).
    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `path` made absolute against `base` (default: the current directory) and normalised.
    public static func absolute(_ path: String, base: String? = nil) -> String {
        if path.hasPrefix("/") { return normalize(path) }
        let b = base ?? currentDirectory()
        return normalize(b + "/" + path)
    }

    /// Removes repeated slashes, "." components and a trailing slash. ".." is kept, because
    /// resolving it without the filesystem would be wrong across symlinks.
    public static func normalize(_ path: String) -> String {
        if isNormalAbsolute(path) { return path }
        let absolute = path.hasPrefix("/")
        let parts = path.split(separator: "/").filter { $0 != "." }
        let joined = parts.joined(separator: "/")
        if absolute { return "/" + joined }
        return joined.isEmpty ? "." : joined
    }

    /// Whether `path` is absolute with no empty or "." component and no trailing "/" (what
    /// normalize returns unchanged; most paths are, and a run normalizes several).
    static func isNormalAbsolute(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { u in
            guard u.count > 0, u[0] == 0x2F else { return false }
            if u.count == 1 { return true }
            var start = 1
            for i in 1...u.count where i == u.count || u[i] == 0x2F {
                if i == start || (i == start + 1 && u[start] == 0x2E) { return false }
                start = i + 1
            }
            return true
        }
    }

    /// The user's home directory: $HOME as Python's expanduser uses it, else the password database.
    public static func home(environment: [String: String]) -> String {
        if let h = environment["HOME"], !h.isEmpty { return h }
        if let pw = getpwuid(geteuid()), let dir = pw.pointee.pw_dir {
            let s = String(cString: dir)
            if !s.isEmpty { return s }
        }
        return "/"
    }
}
