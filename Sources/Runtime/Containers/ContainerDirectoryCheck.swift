// A container directory (from `import --clone`, or edited by hand) must not redirect the tool to the
// host: ROOT, runtime/ and udocker's metadata files are checked, without following links, before use.
#if canImport(Glibc)
import Glibc
#endif
import CAS

enum ContainerDirectoryCheck {
    /// Why container directory `dir` must not be used, or nil when it is safe: `dir` and its ROOT are
    /// real directories, and nothing of the directory outside ROOT is a symbolic link (ROOT's own
    /// content is the container's, links there are resolved inside it by the engines). Unless `deep`
    /// (an archive, checked once), the F3/F4 originals kept aside are not listed on every command:
    /// ElfPatcher opens them with O_NOFOLLOW itself.
    static func problem(_ dir: String, deep: Bool = false) -> String? {
        var st = stat()
        guard lstat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return "the container directory is not a directory" }
        let root = dir + "/" + ContainerStore.rootDir
        guard lstat(root, &st) == 0 else { return "no ROOT directory" }
        if (st.st_mode & S_IFMT) == S_IFLNK { return "ROOT is a symbolic link\(target(root)), not a directory; udocker follows no links in a container directory" }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return "ROOT is not a directory" }
        return linkBelow(dir, shown: "", depth: 0, skip: deep ? [ContainerStore.rootDir] : [ContainerStore.rootDir, ElfPatcher.asideDir])
    }

    /// Throws RuntimeError.badContainer when `problem` finds one.
    static func check(_ dir: String) throws {
        if let why = problem(dir) { throw RuntimeError.badContainer(path: dir, reason: why) }
        // What a link swapped in from here on meets: BeneathFiles, which follows none.
        Failpoint.stop("container-checked")
    }

    /// The first symbolic link (or unreadable directory) below `dir`, as a reason; the contents of the
    /// directories named in `skip` are not looked at (they are still checked not to be links).
    private static func linkBelow(_ dir: String, shown: String, depth: Int, skip: Set<String>) -> String? {
        guard depth < 64 else { return "\(shown) is nested too deeply" }
        guard let names = try? FileIO.listDirectory(dir) else { return "\(shown.isEmpty ? "the container directory" : shown) cannot be read" }
        for name in names {
            let path = dir + "/" + name
            let rel = shown.isEmpty ? name : shown + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                return "\(rel) is a symbolic link\(target(path)); udocker follows no links in a container directory"
            case S_IFDIR:
                if skip.contains(name) { continue }
                if let why = linkBelow(path, shown: rel, depth: depth + 1, skip: []) { return why }
            default:
                continue
            }
        }
        return nil
    }

    private static func target(_ path: String) -> String {
        ContainerStore.readLink(path).map { " to " + $0 } ?? ""
    }
}
