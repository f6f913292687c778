// Group stores: one store shared by the members of a Unix group. Its directories are group-owned,
// setgid and group-writable, its objects read-only and readable by every member whatever their umask.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// The Unix group a group store belongs to.
public struct SharedGroup: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let gid: UInt32

    public init(name: String, gid: UInt32) {
        self.name = name
        self.gid = gid
    }

    public var description: String { "\(name) (gid \(gid))" }

    /// The group named `text` (a name, or a number), from the system's group database.
    public static func lookup(_ text: String) throws -> SharedGroup {
        var gr = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buf = [CChar](repeating: 0, count: 16384)
        if let n = UInt32(text) {
            if getgrgid_r(n, &gr, &buf, buf.count, &result) == 0, let r = result, let name = r.pointee.gr_name {
                return SharedGroup(name: String(cString: name), gid: n)
            }
            return SharedGroup(name: text, gid: n)
        }
        guard getgrnam_r(text, &gr, &buf, buf.count, &result) == 0, let r = result else {
            throw CASError.groupStore("there is no group '\(text)' on this host: give an existing group (see 'getent group') or ask the administrator to create one")
        }
        return SharedGroup(name: text, gid: r.pointee.gr_gid)
    }

    /// The name of group `gid` on this host, or its number.
    public static func name(of gid: UInt32) -> String {
        var gr = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buf = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &gr, &buf, buf.count, &result) == 0, let r = result, let n = r.pointee.gr_name else { return String(gid) }
        return String(cString: n)
    }

    /// The login name of user `uid` on this host, or its number.
    public static func userName(of uid: UInt32) -> String { loginName(of: uid) ?? String(uid) }

    /// The login name of user `uid` on this host, or nil when it has none.
    static func loginName(of uid: UInt32) -> String? {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buf = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &pw, &buf, buf.count, &result) == 0, let r = result, let n = r.pointee.pw_name else { return nil }
        return String(cString: n)
    }

    /// The group of the store at `path` as its store.json says (nil: not a group store, or no store).
    public static func ofStore(at path: String) -> SharedGroup? {
        guard let sf = try? Store.readStoreFile(StoreLayout(root: path)), let gid = sf.gid else { return nil }
        return SharedGroup(name: sf.group ?? name(of: gid), gid: gid)
    }

    /// Whether this process has `gid` as its group or one of its supplementary groups.
    public static func isMember(_ gid: UInt32) -> Bool {
        if getegid() == gid || getgid() == gid { return true }
        let n = getgroups(0, nil)
        guard n > 0 else { return false }
        var groups = [gid_t](repeating: 0, count: Int(n))
        let got = getgroups(n, &groups)
        return got > 0 && groups.prefix(Int(got)).contains(gid)
    }
}

extension Store {
    /// Directories of a group store: group-owned (the setgid bit passes the group on), group-writable
    /// so every member can add objects and GC can remove any member's.
    static let groupDirectoryMode: mode_t = 0o2775
    /// The store's own directory keeps everyone outside the group out.
    static let groupRootMode: mode_t = 0o2770
    static let groupLockMode: mode_t = 0o664

    /// The lock files every member must be able to open for writing.
    static func lockFiles(_ layout: StoreLayout) -> [String] {
        [layout.refsLock, layout.gcLock, layout.layersLock, layout.indexLock, layout.claimsLock]
    }

    /// The directories of a store whose permissions a group store depends on.
    static func groupDirectories(_ layout: StoreLayout) -> [String] {
        [layout.root, layout.root + "/blobs", layout.blobsDir, layout.root + "/layers", layout.layersDir, layout.refsDir,
         layout.repositoriesDir, layout.tmpDir, layout.locksDir, layout.privateDir]
    }

    /// Creates the store at `path` as a group store of `group`, or joins it when it is one already, or
    /// makes an existing store of this user a group store (giving the group every directory and file
    /// this user owns in it). Then opens it.
    public static func create(at path: String, group g: SharedGroup) throws -> Store {
        try create(at: path, group: g, environment: ProcessInfo.processInfo.environment)
    }

    static func create(at path: String, group g: SharedGroup, environment: [String: String]) throws -> Store {
        guard SharedGroup.isMember(g.gid) else {
            throw CASError.groupStore("you are not a member of group \(g): ask the administrator to add you (then log in again so the shell has the group, see 'id -nG')")
        }
        let layout = StoreLayout(root: path)
        if FileIO.exists(layout.storeFile) {
            var sf = try readStoreFile(layout)
            if let gid = sf.gid, gid != g.gid {
                throw CASError.groupStore("\(layout.root) is the store of group \(SharedGroup.name(of: gid)), not of \(g.name): join it with --group=\(SharedGroup.name(of: gid))")
            }
            if sf.gid == nil {
                // A store of one user becomes a group store: what this user owns in it goes to the group.
                giveToGroup(layout, gid: g.gid)
                sf.group = g.name
                sf.gid = g.gid
                try StoreFiles(layout: layout).writeAtomically(layout.storeFile, try StoreFiles.encode(sf), mode: 0o644)
            }
        } else {
            try FileIO.mkdirs(layout.root)
            try shareDirectory(layout.root, gid: g.gid, mode: groupRootMode)
            let sf = StoreFile(format: StoreLayout.formatVersion, id: UUID().uuidString.lowercased(), group: g.name, gid: g.gid)
            try makeSubdirectories(layout, gid: g.gid)
            _ = try StoreFiles(layout: layout).writeAtomically(layout.storeFile, try StoreFiles.encode(sf), replace: false)
        }
        // Repairs what this member owns (a directory made with another umask, say); the rest is
        // reported by open.
        try? makeSubdirectories(layout, gid: g.gid)
        for d in groupDirectories(layout) { try? shareDirectory(d, gid: g.gid, mode: d == layout.root ? groupRootMode : groupDirectoryMode) }
        for f in lockFiles(layout) { makeLockFile(f, gid: g.gid) }
        let store = try open(at: path, environment: environment)
        // Every blob directory ahead of time: fewer directories appear while members pull at once.
        for i in 0..<256 { try store.makeGroupDirectory(layout.blobsDir + "/" + String(format: "%02x", i)) }
        return store
    }

    static func makeSubdirectories(_ layout: StoreLayout, gid: UInt32) throws {
        for d in groupDirectories(layout) where d != layout.root {
            if mkdir(d, groupDirectoryMode) == 0 {
                try shareDirectory(d, gid: gid, mode: groupDirectoryMode)
            } else if errno != EEXIST {
                throw CASError.io("mkdir", d, errno)
            }
        }
    }

    /// Gives a directory this user owns the group and `mode` (chmod, as the umask may have cleared bits).
    static func shareDirectory(_ path: String, gid: UInt32, mode: mode_t) throws {
        var st = stat()
        guard lstat(path, &st) == 0, st.st_uid == geteuid() else { return }
        if st.st_gid != gid && lchown(path, uid_t.max, gid) != 0 { throw CASError.io("chgrp", path, errno) }
        if (st.st_mode & 0o7777) != mode && chmod(path, mode) != 0 { throw CASError.io("chmod", path, errno) }
    }

    /// A lock file every member can open for writing (OFD write locks need a writable descriptor).
    static func makeLockFile(_ path: String, gid: UInt32) {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, groupLockMode)
        guard fd >= 0 else { return }
        defer { _ = close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_uid == geteuid() else { return }
        if st.st_gid != gid { _ = fchown(fd, uid_t.max, gid) }
        if (st.st_mode & 0o7777) != groupLockMode { _ = fchmod(fd, groupLockMode) }
    }

    /// Walks an existing store (not its index) and gives the group every directory and file this user
    /// owns: directories setgid and group-writable, files group-readable. Others' files are left to them.
    static func giveToGroup(_ layout: StoreLayout, gid: UInt32) {
        func visit(_ dirFD: Int32, _ path: String, depth: Int) {
            guard depth < 512, let names = try? FileIO.listDirectory(fd: dirFD, path: path) else { return }
            for name in names {
                if depth == 0 && name == "index" { continue }
                var st = stat()
                guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_uid == geteuid() else { continue }
                let kind = st.st_mode & S_IFMT
                if kind == S_IFLNK { continue }
                if st.st_gid != gid { _ = fchownat(dirFD, name, uid_t.max, gid, AT_SYMLINK_NOFOLLOW) }
                if kind == S_IFDIR {
                    _ = fchmodat(dirFD, name, groupDirectoryMode, 0)
                    let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child >= 0 {
                        visit(child, path + "/" + name, depth: depth + 1)
                        _ = close(child)
                    }
                } else if kind == S_IFREG {
                    let m = st.st_mode & 0o7777
                    let wanted = m | 0o044 | (m & 0o200 != 0 && depth <= 1 ? 0o020 : 0)
                    if wanted != m { _ = fchmodat(dirFD, name, wanted, 0) }
                }
            }
        }
        let fd = Glibc.open(layout.root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { _ = close(fd) }
        _ = fchown(fd, uid_t.max, gid)
        _ = fchmod(fd, groupRootMode)
        visit(fd, layout.root, depth: 0)
    }

    /// What is wrong with a group store's permissions for this user, one sentence each (none: fine).
    static func groupProblems(_ layout: StoreLayout, gid: UInt32) -> [String] {
        let name = SharedGroup.name(of: gid)
        var out = [String]()
        if !SharedGroup.isMember(gid) {
            out.append("you are not a member of group \(name), which the store belongs to (ask the administrator to add you, then log in again)")
        }
        for d in groupDirectories(layout) {
            var st = stat()
            guard lstat(d, &st) == 0 else {
                if d != layout.privateDir { out.append("\(d) is missing") }
                continue
            }
            if (st.st_mode & S_IFMT) != S_IFDIR { out.append("\(d) is not a directory"); continue }
            var wrong = [String]()
            if st.st_gid != gid { wrong.append("its group is \(SharedGroup.name(of: st.st_gid)), not \(name)") }
            if st.st_mode & 0o070 != 0o070 { wrong.append("the group cannot read, write and enter it (mode \(octal(st.st_mode & 0o7777)))") }
            if st.st_mode & 0o2000 == 0 { wrong.append("it is not setgid, so new files would not belong to \(name)") }
            if !wrong.isEmpty { out.append("\(d): " + wrong.joined(separator: ", ")) }
        }
        for f in lockFiles(layout) {
            var st = stat()
            guard lstat(f, &st) == 0 else { continue }
            if st.st_gid != gid || st.st_mode & 0o060 != 0o060 {
                out.append("\(f): the group cannot write it (group \(SharedGroup.name(of: st.st_gid)), mode \(octal(st.st_mode & 0o7777)))")
            }
        }
        return out
    }

    /// The fix for `groupProblems`, for the message.
    static func groupFix(_ layout: StoreLayout, gid: UInt32) -> String {
        let g = SharedGroup.name(of: gid)
        return "the owner of those files can fix them with 'udocker mkrepo <their repository> --store=\(layout.root) --group=\(g)', or by hand: chgrp -R \(g) \(layout.root) && chmod -R g+rwX \(layout.root) && find \(layout.root) -type d -exec chmod g+s {} +"
    }

    /// Makes the directory `path` of a group store unless it exists, appearing with the group's mode
    /// at once: made in tmp/, chmodded, then renamed into place, so another member never finds it
    /// with the creator's umask (a blob rename into it would fail). A racing creator's copy is dropped.
    func makeGroupDirectory(_ path: String) throws {
        if FileIO.isDirectory(path) { return }
        let tmp = layout.tmpDir + "/" + TempName.make("dir")
        if mkdir(tmp, 0o755) != 0 { throw CASError.io("mkdir", tmp, errno) }
        if chmod(tmp, Self.groupDirectoryMode) != 0 {
            let e = errno
            _ = rmdir(tmp)
            throw CASError.io("chmod", tmp, e)
        }
        if ud_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, path) != 0 {
            let e = errno
            _ = rmdir(tmp)
            guard e == EEXIST || e == ENOTEMPTY else { throw CASError.io("rename", path, e) }
            return
        }
        try FileIO.fsyncDirectory(FileIO.parent(of: path))
    }

    /// Before an unpacked layer becomes visible in a group store: every directory of `tempDir` gets
    /// the group's directory mode, every regular file read access for the group and others (whatever
    /// the image gave it), so any member can copy or remove it but not write it.
    func shareTree(_ tempDir: String) throws {
        guard group != nil else { return }
        let fd = Glibc.open(tempDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw CASError.io("open", tempDir, errno) }
        defer { _ = close(fd) }
        if fchmod(fd, Self.groupDirectoryMode) != 0 { throw CASError.io("chmod", tempDir, errno) }
        var stack: [(fd: Int32, path: String)] = [(dup(fd), tempDir)]
        while let (dirFD, path) = stack.popLast() {
            defer { _ = close(dirFD) }
            for name in try FileIO.listDirectory(fd: dirFD, path: path) {
                var st = stat()
                guard fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else { throw CASError.io("stat", path + "/" + name, errno) }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if fchmodat(dirFD, name, Self.groupDirectoryMode, 0) != 0 { throw CASError.io("chmod", path + "/" + name, errno) }
                    let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    if child < 0 { throw CASError.io("open", path + "/" + name, errno) }
                    stack.append((child, path + "/" + name))
                case S_IFREG:
                    let m = st.st_mode & 0o7777
                    if m & 0o044 != 0o044 && fchmodat(dirFD, name, m | 0o444, 0) != 0 {
                        throw CASError.io("chmod", path + "/" + name, errno)
                    }
                    // The setgid directory gave the file the store's group, which the sealing
                    // namespace cannot map (newgidmap maps only the user's own gid and subgids): the
                    // user's own group, which readers do not need (the file is readable by all).
                    if st.st_gid != getegid() && fchownat(dirFD, name, uid_t.max, getegid(), AT_SYMLINK_NOFOLLOW) != 0 {
                        throw CASError.io("chgrp", path + "/" + name, errno)
                    }
                default:
                    break
                }
            }
        }
    }
}
