// Adds the user's entry to the container's own /etc/passwd and /etc/group (Fakechroot binds nothing):
// a new file renamed over the old one, never a write into a store file; a lock for concurrent runs.
#if canImport(Glibc)
import Glibc
#endif
import CAS

enum ContainerAccountFiles {
    /// Adds `user` (and its group) to the tree's /etc/passwd and /etc/group unless they have it.
    /// Returns the container files changed.
    @discardableResult
    static func install(_ user: RunUser, tree: FakechrootTree) throws -> [String] {
        guard let etc = tree.inside("/etc"), FileIO.isDirectory(etc) else { return [] }
        let lock = try containerLock(tree.stateDir + "/.accounts.lock", beneath: tree.stateDir)
        defer { lock.unlock() }
        let passwdPath = tree.inside("/etc/passwd") ?? etc + "/passwd"
        let groupPath = tree.inside("/etc/group") ?? etc + "/group"
        let passwdText = RunPlanner.readText(passwdPath)
        let groupText = RunPlanner.readText(groupPath)
        guard let files = Accounts.withEntry(for: user, passwdText: passwdText, groupText: groupText) else { return [] }
        var changed: [String] = []
        if files.passwd != passwdText {
            try replace(passwdPath, with: files.passwd)
            changed.append("/etc/passwd")
        }
        if files.group != groupText {
            try replace(groupPath, with: files.group)
            changed.append("/etc/group")
        }
        return changed
    }

    /// Writes a new file beside `path` with the old one's mode and renames it over: the old inode
    /// (perhaps the store's) is left as it was.
    static func replace(_ path: String, with text: String) throws {
        var st = stat()
        let mode: mode_t = lstat(path, &st) == 0 ? (st.st_mode & 0o7777) | 0o200 : 0o644
        try ContainerStore.io { try FileIO.writeAtomically(path, Array(text.utf8), mode: mode) }
    }
}

/// An exclusive lock on `path` (made, with its directory, when missing), as a RuntimeError on failure.
/// With `base` (the container's directory, `path` below it), no link on the way is followed.
func containerLock(_ path: String, beneath base: String? = nil) throws -> FileLock {
    if let base {
        if !FileIO.exists(base) { try ContainerStore.io { try FileIO.mkdirs(base, mode: 0o700) } }
        return try BeneathFiles.lock(path, beneath: base)
    }
    return try ContainerStore.io {
        try FileIO.mkdirs(FileIO.parent(of: path), mode: 0o700)
        return try FileLock(path: path)
    }
}
