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
        /// Digests of patched files computed for this view, for the stat cache ("elf:" + path).
        var hashed: [String: DeltaCache.FileDigest] = [:]
        var filesHashed = 0

        func hidden(in parent: String) -> Set<String> { hiddenByParent[parent] ?? [] }
        func replacement(_ path: String) -> (stat: stat, source: String)? { replaced[path] }
        func symlinkTarget(_ path: String) -> String? { nil }

        /// Paths where runc makes mount points (empty files and directories) that the image does not
        /// have: the kernel filesystems and udocker's default system files (sysdirs_list).
        var mountPoints: Set<String> = []
        func isSetupArtifact(_ path: String) -> Bool { mountPoints.contains(path) }

        mutating func hide(_ path: String) {
            let (parent, name) = MergedTree.split(path)
            hiddenByParent[parent, default: []].insert(name)
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
    static func view(containerDir dir: String, execmode: String, cache: DeltaCache = DeltaCache()) throws -> View {
        let mode = execmode.uppercased()
        var v = View()
        if mode.hasPrefix("R") {
            // runc's bundle and udocker's own files live in ROOT/.udocker (RuncConfigBuilder.engineDir).
            v.version = "r"
            v.hide(".udocker")
            v.mountPoints = ["proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc/resolv.conf", "etc/host.conf",
                             "etc/hosts", "etc/hostname", "etc/passwd", "etc/group", "lib/modules"]
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
                if let d = cache.digest("elf:" + f.path, key) { current = d } else {
                    current = try ContainerStore.io { try SHA256Hasher.hash(fileAt: root + "/" + f.path) }.0
                    v.filesHashed += 1
                }
                if key.mtime < now && key.ctime < now { v.hashed["elf:" + f.path] = DeltaCache.FileDigest(stat: key, digest: current) }
                guard current.hex == f.patched else { continue }   // changed in the container since: its own file
                if let aside = f.aside, lstat(dir + "/" + aside, &sa) == 0, (sa.st_mode & S_IFMT) == S_IFREG {
                    v.replaced[f.path] = (sa, dir + "/" + aside)
                    hasher.update(Array("\(f.path) \(sa.st_ino) \(sa.st_size) \(sa.st_mtim.tv_sec)\n".utf8))
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
}
