// The account a container runs as: resolved against the container's (or, with --hostauth, the
// host's) /etc/passwd and /etc/group, and the passwd/group files that give it an entry.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct PasswdEntry: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var gecos: String
    public var home: String
    public var shell: String

    public var line: String { "\(name):x:\(uid):\(gid):\(gecos):\(home):\(shell)" }

    /// Parses the lines of a passwd file, skipping comments and malformed lines.
    public static func parse(_ text: String) -> [PasswdEntry] {
        text.split(separator: "\n").compactMap { raw in
            let f = raw.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 7, !f[0].hasPrefix("#"), let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { return nil }
            return PasswdEntry(name: f[0], uid: uid, gid: gid, gecos: f[4], home: f[5], shell: f[6])
        }
    }
}

/// The user a container's program runs as.
public struct RunUser: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    public var home: String
    public var shell: String
    public var isRoot: Bool { uid == 0 }
}

/// How far an engine can change the identity a program sees.
public enum IdentitySupport: Sendable {
    /// Any uid and gid (PRoot fakes them; runc maps one uid of a user namespace).
    case any
    /// Only the host user's own uid and gid (Fakechroot, Apptainer).
    case hostOnly
}

public enum Accounts {
    /// Resolves `--user` (or the image's User) the way udocker does: a name or UID[:GID] found in
    /// the passwd file gives its entry; one not found is made up (the name with the host uid, or
    /// the uid with the name udocNNNN). Engines that cannot change identity get the host's ids.
    public static func resolve(_ spec: String?, passwd: [PasswdEntry], support: IdentitySupport,
                               defaultRoot: Bool, bindHome: String?) throws -> RunUser {
        let hostUID = getuid(), hostGID = getgid()
        let hostName = hostUserName() ?? "udoc\(hostUID)"
        var requested = spec ?? ""
        if requested.isEmpty { requested = defaultRoot && support == .any ? "root" : "" }
        // An engine that cannot be root runs as the host user instead, as udocker does.
        if support == .hostOnly && (requested == "root" || numericUser(requested)?.0 == 0) { requested = "" }
        var user: RunUser
        if requested.isEmpty {
            let e = passwd.first { $0.uid == hostUID }
            user = RunUser(name: e?.name ?? hostName, uid: hostUID, gid: hostGID, home: e?.home ?? "/", shell: e?.shell ?? "/bin/sh")
        } else if let (uid, gid) = numericUser(requested) {
            let e = passwd.first { $0.uid == uid }
            user = RunUser(name: e?.name ?? "udoc\(uid)", uid: uid, gid: gid ?? e?.gid ?? hostGID,
                           home: e?.home ?? "/", shell: e?.shell ?? "/bin/sh")
        } else {
            guard isValidName(requested) else {
                throw RuntimeError.badRunOption("invalid user '\(requested)'", "give a user name or UID[:GID], e.g. --user=1000:1000")
            }
            if let e = passwd.first(where: { $0.name == requested }) {
                user = RunUser(name: e.name, uid: e.uid, gid: e.gid, home: e.home, shell: e.shell)
            } else if requested == "root" {
                user = RunUser(name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/sh")
            } else {
                user = RunUser(name: requested, uid: hostUID, gid: hostGID, home: "/", shell: "/bin/sh")
            }
        }
        if support == .hostOnly {
            user.uid = hostUID
            user.gid = hostGID
        }
        if let h = bindHome { user.home = h }
        return user
    }

    /// "1000" or "1000:1000".
    static func numericUser(_ s: String) -> (UInt32, UInt32?)? {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let uid = UInt32(parts[0]) else { return nil }
        if parts.count == 2 {
            guard let gid = UInt32(parts[1]) else { return nil }
            return (uid, gid)
        }
        return (uid, nil)
    }

    static func isValidName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" || $0 == ".") }
    }

    public static func hostUserName() -> String? {
        guard let pw = getpwuid(getuid()), let n = pw.pointee.pw_name else { return nil }
        return String(cString: n)
    }

    public static func hostHome() -> String? {
        guard let pw = getpwuid(getuid()), let h = pw.pointee.pw_dir else { return nil }
        return String(cString: h)
    }

    /// passwd and group texts that contain `user` (and its group and the host's supplementary
    /// groups, as udocker adds them), or nil when `passwd` already has the user's entry.
    public static func withEntry(for user: RunUser, passwdText: String, groupText: String) -> (passwd: String, group: String)? {
        let entries = PasswdEntry.parse(passwdText)
        if entries.contains(where: { $0.uid == user.uid && $0.name == user.name }) { return nil }
        var passwd = passwdText
        if !passwd.isEmpty && !passwd.hasSuffix("\n") { passwd += "\n" }
        let entry = PasswdEntry(name: user.name, uid: user.uid, gid: user.gid, gecos: "*UDOCKER*", home: user.home, shell: user.shell)
        passwd += entry.line + "\n"
        var group = groupText
        if !group.isEmpty && !group.hasSuffix("\n") { group += "\n" }
        let gids = Set(groupText.split(separator: "\n").compactMap { line -> UInt32? in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            return f.count >= 3 ? UInt32(f[2]) : nil
        })
        if !gids.contains(user.gid) { group += "\(user.name):x:\(user.gid):\n" }
        return (passwd, group)
    }

    /// Writes `text` as a file named by its content under `dir`, once: concurrent runs of one
    /// container share it and nothing needs removing afterwards. With `base` (the container's
    /// directory, `dir` below it), nothing on the way from `base` is followed if it is a link.
    public static func contentFile(_ text: String, kind: String, in dir: String, beneath base: String? = nil) throws -> String {
        let bytes = Array(text.utf8)
        let name = "\(kind)-" + String(try SHA256Hasher.digest(of: bytes).hex.prefix(16))
        let path = dir + "/" + name
        if let base {
            if try BeneathFiles.exists(path, beneath: base) == false {
                try BeneathFiles.write(path, beneath: base, bytes, mode: 0o644, makeParents: true)
            }
            return path
        }
        if FileIO.exists(path) { return path }
        try FileIO.mkdirs(dir, mode: 0o700)
        try FileIO.writeAtomically(path, bytes, mode: 0o644)
        return path
    }
}
