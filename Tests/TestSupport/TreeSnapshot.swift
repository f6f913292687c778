// What a directory tree holds, entry by entry (type, mode, owner, mtime, sha256 of files, symlink
// targets, optionally inodes), to show that a store or a container is byte for byte what it was.
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// Every entry below a root, by path relative to it ("/" for the root itself), described as one string.
/// Link counts and ctimes are left out: linking a store file into a container changes both.
public struct TreeSnapshot: Equatable, Sendable {
    public let root: String
    public private(set) var entries: [String: String] = [:]
    private var wholeSeconds = false
    private var owners = true

    /// `inodes`: also the inode of each regular file (a file replaced by rename then differs even when
    /// its bytes are the same); off to compare two containers, whose copied files are distinct inodes.
    /// `excluding`: relative paths (and their subtrees) left out. `rootEntry`: false leaves out the
    /// root's own metadata (a container's ROOT is made when the container is, not from the image).
    /// `wholeSeconds`: mtimes to the second (what travels in a tar layer, such as a container's delta).
    /// `owners`: false leaves out uid and gid (a copy made by the user of files a sealed store's
    /// subordinate id owns).
    public init(_ root: String, inodes: Bool = true, excluding: Set<String> = [], rootEntry: Bool = true,
                wholeSeconds: Bool = false, owners: Bool = true) throws {
        self.root = root
        self.wholeSeconds = wholeSeconds
        self.owners = owners
        try walk("", inodes: inodes, excluding: excluding)
        if !rootEntry { entries["/"] = nil }
    }

    /// The paths that differ from `other`, each with both descriptions, sorted; empty when equal.
    public func differences(from other: TreeSnapshot) -> [String] {
        Set(entries.keys).union(other.entries.keys).sorted().compactMap { p in
            let mine = entries[p], theirs = other.entries[p]
            return mine == theirs ? nil : "\(p): \(theirs ?? "absent") -> \(mine ?? "absent")"
        }
    }

    public static func == (a: TreeSnapshot, b: TreeSnapshot) -> Bool { a.entries == b.entries }

    /// The hardlinks inside a tree: for each regular file with several paths in it, its paths sorted.
    public static func hardlinkGroups(_ root: String) throws -> [[String]] {
        var byInode = [UInt64: [String]]()
        func walk(_ rel: String) throws {
            var st = stat()
            guard lstat(root + rel, &st) == 0 else { return }
            if (st.st_mode & S_IFMT) == S_IFDIR {
                for n in try FileIO.listDirectory(root + rel).sorted() { try walk(rel + "/" + n) }
            } else if (st.st_mode & S_IFMT) == S_IFREG && st.st_nlink > 1 {
                byInode[UInt64(st.st_ino), default: []].append(rel)
            }
        }
        try walk("")
        return byInode.values.filter { $0.count > 1 }.map { $0.sorted() }.sorted { $0[0] < $1[0] }
    }

    private mutating func walk(_ rel: String, inodes: Bool, excluding: Set<String>) throws {
        if excluding.contains(rel) { return }
        let path = root + rel
        var st = stat()
        guard lstat(path, &st) == 0 else {
            throw CommandError(description: "TreeSnapshot: lstat \(path) failed: \(String(cString: strerror(errno)))")
        }
        let common = "\(String(st.st_mode & 0o7777, radix: 8))" + (owners ? " \(st.st_uid):\(st.st_gid)" : "")
        let mtime = wholeSeconds ? "\(st.st_mtim.tv_sec)" : "\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
        let key = rel.isEmpty ? "/" : rel
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            entries[key] = "dir \(common) \(mtime)"
            for name in try FileIO.listDirectory(path).sorted() { try walk(rel + "/" + name, inodes: inodes, excluding: excluding) }
        case S_IFREG:
            let (digest, size) = try SHA256Hasher.hash(fileAt: path)
            entries[key] = "file \(common) \(mtime) \(size) \(digest.hex)" + (inodes ? " ino \(st.st_ino)" : "")
        case S_IFLNK:
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buf, buf.count - 1)
            let target = n >= 0 ? String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            entries[key] = "symlink \(common) -> \(target)"
        default:
            entries[key] = "other \(common) \(st.st_mode & S_IFMT)"
        }
    }
}

/// Regular files below `root` (not following symlinks) owned by `uid`, as paths relative to `root`.
public func filesOwned(by uid: UInt32, under root: String) -> [String] {
    var found = [String]()
    func walk(_ rel: String) {
        var st = stat()
        guard lstat(root + rel, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in (try? FileIO.listDirectory(root + rel)) ?? [] { walk(rel + "/" + name) }
        } else if st.st_mode & S_IFMT == S_IFREG && st.st_uid == uid {
            found.append(rel)
        }
    }
    walk("")
    return found.sorted()
}
