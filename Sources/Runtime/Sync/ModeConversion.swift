// How a container set up in a Fakechroot (Fn) or runc (Rn) mode travels: the delta is computed from
// a converted view of its ROOT (the files as they were before setup), never by changing the source,
// and it arrives in a PRoot mode.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ModeConversion {
    /// The mode a container arrives in: Fn and Rn become P1 (their setup is tied to the source host's
    /// paths and tools); P1, P2 and S1 stay.
    public static func arrivalMode(_ mode: String) -> String {
        let m = mode.uppercased()
        if m.hasPrefix("F") || m.hasPrefix("R") { return "P1" }
        return m
    }

    /// A container's ROOT as it travels: entries setup added that are left out, files setup patched
    /// that are read from their saved originals, symlinks setup changed that travel as they were.
    struct View {
        /// Names the conversion in the stat cache: a cache made under another view is not reused.
        var version: String = "p"
        /// Paths (ROOT-relative) left out, by their parent directory.
        var hiddenByParent: [String: Set<String>] = [:]
        /// Paths that were empty directories before a Fakechroot volume link replaced them: mode.
        var emptyDirs: [String: mode_t] = [:]
        /// Files read from elsewhere: ROOT-relative path -> (stat of the original, its absolute path).
        var replaced: [String: (stat: stat, source: String)] = [:]
        /// Patched files whose original is gone: they travel as they are (with the source's paths).
        var unconverted: [String] = []
        /// Digests of patched files computed for this view, for the stat cache (`DeltaCache.patched`).
        var hashed: [String: DeltaCache.FileDigest] = [:]
        var filesHashed = 0

        func hidden(in parent: String) -> Set<String> { hiddenByParent[parent] ?? [] }
        func replacement(_ path: String) -> (stat: stat, source: String)? { replaced[path] }
        func symlinkTarget(_ path: String) -> String? { nil }

        /// Paths where runc makes mount points (empty files and directories) that the image does not
        /// have: the kernel filesystems and udocker's default system files (sysdirs_list).
        var mountPoints: Set<String> = []
        /// Directories whose entries setup changed (parents of patched files and volume links): their
        /// mtime moved because of setup, so a converted copy takes the image's.
        var touchedDirs: Set<String> = []
        static let runcMountPoints: Set<String> = ["proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc/resolv.conf",
                                                   "etc/host.conf", "etc/hosts", "etc/hostname", "etc/passwd", "etc/group",
                                                   "lib/modules"]
        func isSetupArtifact(_ path: String) -> Bool { mountPoints.contains(path) }

        mutating func hide(_ path: String) {
            let (parent, name) = MergedTree.split(path)
            hiddenByParent[parent, default: []].insert(name)
            touchedDirs.insert(parent)
        }
    }

    /// The files a Fakechroot or runc setup keeps in the container directory (beside ROOT), which
    /// do not travel: they describe the source host.
    static func isSetupFile(_ name: String) -> Bool {
        [ElfPatcher.recordFile, ElfPatcher.rootFile, ElfPatcher.asideDir, FakechrootTree.loaderFile,
         FakechrootTree.libraryDirsFile, FakechrootVolumes.recordFile, ".setup.lock"].contains(name)
            || name.hasPrefix("ld.so.f2-") || name.hasPrefix("fakechroot-exit")
    }

    /// The view of container directory `dir` set up in `execmode`. Patched files are compared with
    /// what patching made through the stat cache, so an unchanged container is not hashed again.
    /// A patched file whose original is gone is set back by patchelf on a copy kept in `convertDir`
    /// (named by the patched file's digest, so it is made once).
    static func view(containerDir dir: String, execmode: String, cache: DeltaCache = DeltaCache(),
                     convertDir: String? = nil) throws -> View {
        let mode = execmode.uppercased()
        var v = View()
        if mode.hasPrefix("R") {
            // runc's bundle and udocker's own files live in ROOT/.udocker (RuncConfigBuilder.engineDir).
            v.version = "r"
            v.hide(".udocker")
            v.mountPoints = View.runcMountPoints
            return v
        }
        guard mode.hasPrefix("F") else { return v }
        let root = dir + "/" + ContainerStore.rootDir
        let hasher = try SHA256Hasher()
        if let record = try ElfPatcher.readRecord(containerDir: dir) {
            hasher.update(Array((try? FileIO.readFile(dir + "/" + ElfPatcher.recordFile)) ?? []))
            let now = Int64(time(nil))
            for f in record.files {
                var st = stat(), sa = stat()
                guard lstat(root + "/" + f.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                let key = StatKey(st)
                let current: Digest
                if let d = cache.patchedDigest(f.path, key) { current = d } else {
                    current = try ContainerStore.io { try SHA256Hasher.hash(fileAt: root + "/" + f.path) }.0
                    v.filesHashed += 1
                }
                if key.mtime < now && key.ctime < now { v.hashed[f.path] = DeltaCache.FileDigest(stat: key, digest: current) }
                guard current.hex == f.patched else { continue }   // changed in the container since: its own file
                if let aside = f.aside, lstat(dir + "/" + aside, &sa) == 0, (sa.st_mode & S_IFMT) == S_IFREG {
                    v.replaced[f.path] = (sa, dir + "/" + aside)
                    v.touchedDirs.insert(MergedTree.split(f.path).parent)
                    hasher.update(Array("\(f.path) \(sa.st_ino) \(sa.st_size) \(sa.st_mtim.tv_sec)\n".utf8))
                } else if let convertDir, let copy = revertedCopy(root + "/" + f.path, f, into: convertDir),
                          lstat(copy, &sa) == 0 {
                    v.replaced[f.path] = (sa, copy)
                    v.touchedDirs.insert(MergedTree.split(f.path).parent)
                    hasher.update(Array("\(f.path) reverted \(f.patched)\n".utf8))
                } else {
                    v.unconverted.append(f.path)
                }
            }
        }
        for link in FakechrootVolumes.readRecord(dir) {
            let rel = link.path.split(separator: "/").joined(separator: "/")
            guard !rel.isEmpty, ContainerStore.readLink(root + "/" + rel) == link.target else { continue }
            v.hide(rel)
            if let m = link.emptyDirectoryMode { v.emptyDirs[rel] = mode_t(m) }
            hasher.update(Array("link \(rel) \(link.target) \(link.emptyDirectoryMode ?? 0)\n".utf8))
        }
        v.version = "f" + hasher.finish().hex.prefix(16)
        return v
    }

    /// Converts a container directory that is our own new copy (a clone being made, an imported
    /// export) from an Fn or Rn mode to P1: patched files put back from their originals (taken from
    /// `asidesFrom`, the source container's directory, when the copy has none; else set back with
    /// patchelf), Fakechroot's volume links removed, runc's files removed (mount points only where
    /// `imageTree` says the image has nothing there), setup's files beside ROOT removed, execmode P1.
    /// Returns notes for the user. Does nothing for P1, P2 and S1.
    static func convertOwnCopy(containerDir dir: String, asidesFrom src: String?, imageTree: MergedTree?) throws -> [String] {
        let modeFile = dir + "/" + ContainerStore.execModeFile
        let mode = (ContainerStore.readText(modeFile) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let target = arrivalMode(mode)
        guard target != mode.uppercased() else { return [] }
        let root = dir + "/" + ContainerStore.rootDir
        var notes: [String] = []
        var touched = Set<String>()
        if mode.uppercased().hasPrefix("F") {
            for l in FakechrootVolumes.readRecord(dir) { touched.insert(MergedTree.split(l.path.split(separator: "/").joined(separator: "/")).parent) }
            if let record = try ElfPatcher.readRecord(containerDir: dir) {
                for f in record.files { touched.insert(MergedTree.split(f.path).parent) }
                if let src, !FileIO.exists(dir + "/" + ElfPatcher.asideDir) {
                    try ContainerStore.io { try FileIO.mkdirs(dir + "/" + ElfPatcher.asideDir, mode: 0o700) }
                    for f in record.files {
                        guard let a = f.aside else { continue }
                        // A link costs nothing; restore renames it into place.
                        if link(src + "/" + a, dir + "/" + a) != 0 { try copyKeepingMetadata(src + "/" + a, to: dir + "/" + a) }
                    }
                }
                let candidates: [String] = ["/usr/bin/patchelf", "/usr/local/bin/patchelf", "/bin/patchelf"]
                let tool = candidates.first(where: { access($0, X_OK) == 0 }) ?? "patchelf"
                let (r, n) = try ElfPatcher(containerDir: dir, patchelf: tool).restore(record, root: root)
                notes += n
                if r.changed > 0 { notes.append("\(r.changed) patched files were changed inside the container since: kept") }
            }
            _ = try FakechrootVolumes.purge(root: root, stateDir: dir)
        } else {
            try? ContainerTree.remove(root + "/.udocker")
            touched.insert("")
            if let imageTree {
                for p in View.runcMountPoints.sorted(by: >) where imageTree.node(at: p) == nil {
                    var st = stat()
                    guard lstat(root + "/" + p, &st) == 0 else { continue }
                    if (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 { _ = unlink(root + "/" + p) }
                    if (st.st_mode & S_IFMT) == S_IFDIR { _ = rmdir(root + "/" + p) }
                    touched.insert(MergedTree.split(p).parent)
                }
            }
        }
        restoreDirectoryTimes(root: root, touched, imageTree: imageTree)
        for n in (try? FileIO.listDirectory(dir)) ?? [] where isSetupFile(n) {
            try? ContainerTree.remove(dir + "/" + n)
        }
        try ContainerStore.writeFile(modeFile, Array(target.utf8))
        return notes
    }

    /// What `export --clone` of the container directory `dir` converts: nil when its mode stays.
    static func exportConversion(containerDir dir: String, repository: Repository) throws -> TreeArchiver.Conversion? {
        let mode = (ContainerStore.readText(dir + "/" + ContainerStore.execModeFile) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let target = arrivalMode(mode)
        guard target != mode.uppercased() else { return nil }
        return TreeArchiver.Conversion(view: try view(containerDir: dir, execmode: mode), execmode: target,
                                       imageTree: imageTree(containerDir: dir, repository: repository))
    }

    /// The merged tree of the image layers materialize.json names, when the repository's store has them.
    static func imageTree(containerDir dir: String, repository: Repository) -> MergedTree? {
        let layers = ContainerStore.materializeInfo(directory: dir)?.layers ?? []
        guard !layers.isEmpty, let store = try? repository.openStore() else { return nil }
        return (try? Materializer(store: store).inputs(layers)).map { MergedTree(layers: $0) }
    }

    /// Gives the directories setup touched the image's mtime back (where the image has them).
    static func restoreDirectoryTimes(root: String, _ dirs: Set<String>, imageTree: MergedTree?) {
        guard let imageTree else { return }
        for d in dirs {
            guard let n = imageTree.node(at: d), n.kind == .directory, let e = n.entry else { continue }
            var times = AtFile.times(seconds: e.mtime)
            _ = utimensat(AT_FDCWD, d.isEmpty ? root : root + "/" + d, &times, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// A copy with the source's mode and mtime (a sealed store's file cannot be linked by the user).
    static func copyKeepingMetadata(_ src: String, to dst: String) throws {
        let s = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if s < 0 { throw RuntimeError.io("open", src, errno) }
        defer { _ = close(s) }
        var st = stat()
        if fstat(s, &st) != 0 { throw RuntimeError.io("stat", src, errno) }
        let d = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if d < 0 { throw RuntimeError.io("create", dst, errno) }
        defer { _ = close(d) }
        try FileCopier().copy(from: s, to: d, size: UInt64(st.st_size), path: dst)
        _ = fchmod(d, (st.st_mode & 0o7777) | 0o400)
        AtFile.setMtime(fd: d, st.st_mtim)
    }

    /// patchelf run on a copy of the patched file `host`, with the interpreter and rpath it had
    /// before patching; nil when patchelf is missing or fails (the file then travels as it is).
    static func revertedCopy(_ host: String, _ f: ElfPatchRecord.File, into dir: String) -> String? {
        let out = dir + "/" + f.patched
        if FileIO.exists(out) { return out }
        let candidates: [String] = ["/usr/bin/patchelf", "/usr/local/bin/patchelf", "/bin/patchelf"]
        guard let tool = candidates.first(where: { access($0, X_OK) == 0 }) else { return nil }
        var st = stat()
        guard lstat(host, &st) == 0, (try? FileIO.mkdirs(dir, mode: 0o700)) != nil else { return nil }
        // Unique per call: two containers sharing a patched file may be prepared at once.
        let tmp = out + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        _ = unlink(tmp)
        guard (try? copyKeepingMetadata(host, to: tmp)) != nil else { return nil }
        _ = chmod(tmp, 0o600)
        var opts: [String] = []
        if let i = f.interpreter { opts += ["--set-interpreter", i] }
        if let rp = f.rpath { opts += ["--force-rpath", "--set-rpath", rp] }
        else if let rp = f.runpath { opts += ["--set-rpath", rp] }
        else { opts += ["--remove-rpath"] }
        guard let r = Launcher.capture([tool] + opts + [tmp]), r.status == 0 else { _ = unlink(tmp); return nil }
        _ = chmod(tmp, st.st_mode & 0o7777 | 0o400)
        let fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { AtFile.setMtime(fd: fd, st.st_mtim); _ = close(fd) }
        guard rename(tmp, out) == 0 else { _ = unlink(tmp); return nil }
        return out
    }
}
