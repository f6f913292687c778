// Which protection the store's unpacked files have against the containers linked to them: owned by one
// of the user's subordinate uids (sealed), or only detected after the fact, and why.
#if canImport(Glibc)
import Glibc
#endif

/// The subordinate ids the store's files are given, and the setuid tools that map them.
public struct SealOwner: Sendable, Equatable {
    /// The user's own ids.
    public var uid: UInt32
    public var gid: UInt32
    /// The first id of the user's ranges in /etc/subuid and /etc/subgid: the owner of sealed files.
    public var subuid: UInt32
    public var subgid: UInt32
    public var newuidmap: String
    public var newgidmap: String

    public init(uid: UInt32, gid: UInt32, subuid: UInt32, subgid: UInt32, newuidmap: String, newgidmap: String) {
        self.uid = uid; self.gid = gid; self.subuid = subuid; self.subgid = subgid
        self.newuidmap = newuidmap; self.newgidmap = newgidmap
    }
}

public enum StoreProtection: Sendable, Equatable {
    /// Unpacked files belong to the user's subordinate uid and gid, read-only: neither the user nor a
    /// root-emulating engine can chmod or write them; links are made inside a user namespace.
    case sealed(SealOwner)
    /// Nothing prevents a run from writing a linked file; runs check afterwards and `verify` finds it.
    case detectOnly(reason: String)

    public var owner: SealOwner? {
        if case .sealed(let o) = self { return o }
        return nil
    }

    /// One line for `udocker info`.
    public var summary: String {
        switch self {
        case .sealed(let o):
            return "sealed: unpacked files belong to subordinate uid \(o.subuid) and gid \(o.subgid) (read-only; containers link them from a user namespace)"
        case .detectOnly(let reason):
            return "detect only: \(reason); runs that change linked store files are reported, 'udocker store verify --repair' restores them"
        }
    }

    /// What this host and user allow for a store (`network`: on a network filesystem, where the server
    /// decides ownership and a chown to a subordinate uid is refused or not what it seems).
    /// `UDOCKER_STORE_PROTECTION=detect` turns sealing off.
    public static func detect(environment env: [String: String], network: Bool) -> StoreProtection {
        if env["UDOCKER_STORE_PROTECTION"] == "detect" {
            return .detectOnly(reason: "UDOCKER_STORE_PROTECTION=detect is set")
        }
        if network {
            return .detectOnly(reason: "the store is on a network filesystem, whose server decides who owns files")
        }
        let uid = getuid(), gid = getgid()
        if uid == 0 { return .detectOnly(reason: "running as root, whose subordinate ids would not protect anything") }
        let name = SharedGroup.loginName(of: uid)
        // newuidmap and newgidmap read these files themselves: no other place would do.
        let subuidFile = "/etc/subuid", subgidFile = "/etc/subgid"
        guard let subuid = firstSubordinate(in: subuidFile, name: name, id: uid) else {
            return .detectOnly(reason: "user \(name ?? String(uid)) has no subordinate uid range in \(subuidFile) (ask the administrator for one, as rootless podman needs)")
        }
        guard let subgid = firstSubordinate(in: subgidFile, name: name, id: uid) else {
            return .detectOnly(reason: "user \(name ?? String(uid)) has no subordinate gid range in \(subgidFile)")
        }
        guard let newuidmap = tool("newuidmap"), let newgidmap = tool("newgidmap") else {
            return .detectOnly(reason: "newuidmap and newgidmap are not installed (Debian's and Ubuntu's package 'uidmap', 'shadow-utils' elsewhere)")
        }
        return .sealed(SealOwner(uid: uid, gid: gid, subuid: subuid, subgid: subgid,
                                 newuidmap: newuidmap, newgidmap: newgidmap))
    }

    /// The start of the first range of `name` (or of the numeric `id`) in a subuid/subgid file.
    static func firstSubordinate(in path: String, name: String?, id: UInt32) -> UInt32? {
        guard let bytes = try? FileIO.readFile(path) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 3, f[0] == String(id) || f[0] == (name ?? String(id))[...],
                  let start = UInt32(f[1]), let count = UInt32(f[2]), count >= 1, start != 0 else { continue }
            return start
        }
        return nil
    }

    /// A setuid tool from the system directories (never PATH first: a user's PATH may hold anything).
    private static func tool(_ name: String) -> String? {
        for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
            let p = dir + "/" + name
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}

extension StoreProtection {
    /// What `detect` says for the store at `storeDir`, proven by sealing a probe file in its tmp/
    /// (for `udocker info`: a user namespace that cannot be made, or a filesystem that refuses the
    /// chown, turns the answer into detect-only with the reason).
    public static func probe(storeDir: String, environment env: [String: String]) -> StoreProtection {
        let network = Store.isOnNetworkFilesystem(storeDir) || env["UDOCKER_ASSUME_NETWORK_FS"] == "1"
        let p = detect(environment: env, network: network)
        guard let owner = p.owner else { return p }
        let tmp = StoreLayout(root: storeDir).tmpDir
        guard FileIO.isDirectory(tmp) else { return p }
        let name = TempName.make("file")
        let dirFD = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard dirFD >= 0 else { return p }
        defer { _ = close(dirFD) }
        let fd = openat(dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o400)
        guard fd >= 0 else { return p }
        _ = close(fd)
        defer { _ = unlinkat(dirFD, name, 0) }
        do {
            let r = try UserNamespace.run([.seal(in: dirFD, "", names: [name], modes: [0o444])], owner: owner, children: 1)
            if let e = r.first?.first, e != 0 {
                return .detectOnly(reason: "the store's filesystem refuses to give files to subordinate uid \(owner.subuid) (\(String(cString: strerror(e))))")
            }
        } catch {
            return .detectOnly(reason: "\(error)")
        }
        return p
    }
}
