// Writes a directory tree into a tar archive: contents, modes, mtimes, symlinks, fifos and device
// nodes as they are, hard links detected by inode, without following any symlink out of the tree.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What archiving a tree did, for the user to read.
public struct TreeArchiveReport: Sendable, Equatable {
    public var entries = 0
    public var bytes: UInt64 = 0
    /// Paths not archived, with the reason (sockets have no place in a tar).
    public var skipped: [String] = []
}

/// Archives the tree below `root` with paths relative to it (no "./" prefix, the root itself not
/// written, as `docker export` does). Entries are written in sorted order, so two identical trees
/// give identical listings.
///
/// Owners: a rootless container's files all belong to the user who made it, who is root inside the
/// container; so files owned by the calling user are written as uid/gid 0, any other owner (possible
/// when udocker runs as root) keeps its numeric id. Files linked from a sealed store belong to the
/// user's subordinate ids and count as the user's. This is what `docker export` of the same container
/// shows, and what `import` gives back.
struct TreeArchiver {
    let root: String
    /// Set for `export --clone` of a container set up in an Fn or Rn mode: the container directory is
    /// written as it travels (ModeConversion), in P1, without changing it.
    var conversion: Conversion? = nil

    struct Conversion {
        var view: ModeConversion.View
        var execmode: String
        /// The image's merged tree, to tell runc's mount points from the image's own entries.
        var imageTree: MergedTree?
    }

    func write(to w: ArchiveWriter) throws -> TreeArchiveReport {
        let fd = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", root, errno) }
        defer { _ = close(fd) }
        let sealed = StoreProtection.detect(environment: ProcessInfo.processInfo.environment, network: false).owner
        var state = State(uid: geteuid(), gid: getegid(), sealedUID: sealed?.subuid, sealedGID: sealed?.subgid)
        try walk(fd, relative: "", into: w, &state, depth: 0)
        return state.report
    }

    private struct Inode: Hashable {
        let dev: UInt64
        let ino: UInt64
    }

    private struct State {
        let uid: uid_t
        let gid: gid_t
        let sealedUID: uid_t?
        let sealedGID: gid_t?
        var report = TreeArchiveReport()
        var firstPath: [Inode: String] = [:]

        func owner(_ st: stat) -> ArchiveWriter.Owner {
            ArchiveWriter.Owner(uid: st.st_uid == uid || st.st_uid == sealedUID ? 0 : UInt32(st.st_uid),
                                gid: st.st_gid == gid || st.st_gid == sealedGID ? 0 : UInt32(st.st_gid))
        }
    }

    private func walk(_ dirFD: Int32, relative: String, into w: ArchiveWriter, _ s: inout State, depth: Int) throws {
        guard depth < 1024 else {
            throw RuntimeError.archiveWrite(w.destination, "\(root)/\(relative) is nested more than 1024 directories deep")
        }
        for name in try names(dirFD, relative) {
            let path = relative.isEmpty ? name : relative + "/" + name
            var full = root + "/" + path
            var st = stat()
            if fstatat(dirFD, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
                if errno == ENOENT { continue }   // removed while we walk
                throw RuntimeError.io("stat", full, errno)
            }
            var replacedFD: Int32 = -1
            if let c = conversion {
                switch convert(c, relative: relative, name: name, path: path, st: &st, dirFD: dirFD, into: w, &s) {
                case .skip: continue
                case .keep: break
                case .from(let source):
                    replacedFD = Glibc.open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
                    if replacedFD < 0 { throw RuntimeError.io("open", source, errno) }
                    full = source
                }
            }
            defer { if replacedFD >= 0 { _ = close(replacedFD) } }
            let owner = s.owner(st)
            let perm = st.st_mode & 0o7777
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                try w.directory(path, perm: perm, owner: owner, mtime: st.st_mtim)
                s.report.entries += 1
                let sub = try openOwn(dirFD, name, full, st, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, need: 0o500)
                defer { _ = close(sub.fd) }
                // A directory opened by lending ourselves r-x is given its mode back after its entries.
                defer { if sub.lent { _ = fchmodat(dirFD, name, perm, 0) } }
                try walk(sub.fd, relative: path, into: w, &s, depth: depth + 1)
            case S_IFREG:
                let key = Inode(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
                if st.st_nlink > 1, let first = s.firstPath[key] {
                    try w.hardlink(path, target: first, perm: perm, owner: owner, mtime: st.st_mtim)
                    s.report.entries += 1
                    continue
                }
                let f = replacedFD >= 0 ? fcntl(replacedFD, F_DUPFD_CLOEXEC, 0)
                    : try openOwn(dirFD, name, full, st, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, need: 0o400).fd
                if f < 0 { throw RuntimeError.io("open", full, errno) }
                defer { _ = close(f) }
                try w.file(path, perm: perm, owner: owner, mtime: st.st_mtim, size: Int64(st.st_size), fd: f, source: full)
                if st.st_nlink > 1 { s.firstPath[key] = path }
                s.report.entries += 1
                s.report.bytes += UInt64(st.st_size)
            case S_IFLNK:
                try w.symlink(path, target: try readLink(dirFD, name, full), owner: owner, mtime: st.st_mtim)
                s.report.entries += 1
            case S_IFIFO, S_IFCHR, S_IFBLK:
                try w.special(path, type: st.st_mode & S_IFMT, perm: perm, owner: owner, mtime: st.st_mtim, rdev: st.st_rdev)
                s.report.entries += 1
            default:
                s.report.skipped.append(path + ": a socket, which a tar archive cannot hold")
            }
        }
    }

    private enum Converted {
        case keep, skip
        /// A patched file: its original's content (and `st` changed to the original's stat).
        case from(String)
    }

    /// What the conversion does with one entry of the container directory.
    private func convert(_ c: Conversion, relative: String, name: String, path: String, st: inout stat, dirFD: Int32,
                         into w: ArchiveWriter, _ s: inout State) -> Converted {
        if relative.isEmpty {
            if ModeConversion.isSetupFile(name) { return .skip }
            if name == ContainerStore.execModeFile {
                let bytes = Array(c.execmode.utf8)
                if (try? w.file(path, bytes: bytes, perm: st.st_mode & 0o7777, mtime: st.st_mtim)) != nil { s.report.entries += 1 }
                return .skip
            }
            return .keep
        }
        guard relative == ContainerStore.rootDir || relative.hasPrefix(ContainerStore.rootDir + "/") else { return .keep }
        let parent = String(relative.dropFirst(ContainerStore.rootDir.utf8.count).drop { $0 == "/" })
        let rel = parent.isEmpty ? name : parent + "/" + name
        if c.view.hidden(in: parent).contains(name) {
            if let m = c.view.emptyDirs[rel], (try? w.directory(path, perm: m, owner: s.owner(st), mtime: st.st_mtim)) != nil {
                s.report.entries += 1
            }
            return .skip
        }
        if c.view.isSetupArtifact(rel), c.imageTree?.node(at: rel) == nil {
            let type = st.st_mode & S_IFMT
            if type == S_IFREG && st.st_size == 0 { return .skip }
            if type == S_IFDIR, let fd = Optional(AtFile.openDirectory(dirFD, name)), fd >= 0 {
                defer { _ = close(fd) }
                if (try? AtFile.list(fd, path: path))?.isEmpty == true { return .skip }
            }
        }
        if (st.st_mode & S_IFMT) == S_IFDIR, c.view.touchedDirs.contains(rel), let n = c.imageTree?.node(at: rel),
           n.kind == .directory, let e = n.entry, (mode_t(e.mode & 0o7777) | 0o700) == (st.st_mode & 0o7777) {
            st.st_mtim = timespec(tv_sec: Int(e.mtime), tv_nsec: 0)
        }
        if let r = c.view.replacement(rel) {
            st = r.stat
            return .from(r.source)
        }
        return .keep
    }

    /// Opens an entry; one of our own files or directories without read permission for us (images
    /// have /etc/shadow mode 0000; as root that never matters) is given `need` for the open and its
    /// mode back at once (a directory: after its walk, by the caller, when `lent`).
    private func openOwn(_ dirFD: Int32, _ name: String, _ full: String, _ st: stat, _ flags: Int32,
                         need: mode_t) throws -> (fd: Int32, lent: Bool) {
        let fd = openat(dirFD, name, flags)
        if fd >= 0 { return (fd, false) }
        let e = errno
        guard e == EACCES, st.st_uid == geteuid() else { throw RuntimeError.io("open", full, e) }
        let perm = st.st_mode & 0o7777
        if fchmodat(dirFD, name, perm | need, 0) != 0 { throw RuntimeError.io("open", full, e) }
        let again = openat(dirFD, name, flags)
        let e2 = errno
        let isDir = (st.st_mode & S_IFMT) == S_IFDIR
        if !isDir || again < 0 { _ = fchmodat(dirFD, name, perm, 0) }
        if again < 0 { throw RuntimeError.io("open", full, e2) }
        return (again, isDir)
    }

    private func names(_ dirFD: Int32, _ relative: String) throws -> [String] {
        let dup = fcntl(dirFD, F_DUPFD_CLOEXEC, 0)
        guard dup >= 0, let dir = fdopendir(dup) else {
            let e = errno
            throw RuntimeError.io("read directory", root + "/" + relative, e)
        }
        defer { closedir(dir) }
        var out = [String]()
        while let ent = readdir(dir) {
            let name = withUnsafeBytes(of: ent.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    private func readLink(_ dirFD: Int32, _ name: String, _ full: String) throws -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlinkat(dirFD, name, &buf, buf.count - 1)
        if n < 0 { throw RuntimeError.io("readlink", full, errno) }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
