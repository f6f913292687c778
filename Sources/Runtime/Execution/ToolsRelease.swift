// Tools installed from a release run on any host: the bundle's programs are Debian 12's and need its
// glibc, which the release carries, so each gets the release's loader (copied to lib/glibc/) as its
// interpreter and absolute library paths ($ORIGIN leads nowhere for runc and crun, which re-execute
// themselves from a memfd copy). The bundle's patchelf, started through that loader, makes the change.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension ToolsInstaller {
    /// lib/BUNDLE.release.json: each adapted program's sha256 after the change, so a later install
    /// still finds the installed files intact.
    static let adaptedName = "BUNDLE.release.json"
    /// What of the release's lib/ the tools need: glibc's loader and libraries.
    static let releaseGlibc = ["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                               "libresolv.so.2", "libnss_files.so.2", "libnss_dns.so.2"]

    var glibcDir: String { libdir + "/glibc" }
    var adaptedPath: String { libdir + "/" + Self.adaptedName }

    /// The sha256 of each adapted program (by bundle path), from the last adaptation.
    func adaptedDigests() -> [String: String] {
        guard let bytes = try? FileIO.readFile(adaptedPath),
              let map = try? JSONDecoder().decode([String: String].self, from: Data(bytes)) else { return [:] }
        return map
    }

    /// Gives the programs of bin/ the glibc of the release at `release` (its top directory).
    func adaptToRelease(_ manifest: ToolsBundleManifest, release: String) throws {
        try BlobContent.cas { try FileIO.mkdirs(glibcDir) }
        for name in Self.releaseGlibc where FileIO.exists(release + "/lib/" + name) {
            let dest = glibcDir + "/" + name, tmp = dest + ".new-\(getpid())"
            _ = unlink(tmp)
            try copyFile(release + "/lib/" + name, tmp)
            if rename(tmp, dest) != 0 { throw RuntimeError.io("rename", dest, errno) }
        }
        let loader = glibcDir + "/ld-linux-x86-64.so.2"
        let patchelf = bindir + "/patchelf"
        // A bundle without patchelf (made some other way) is left as it is: its programs use the host's glibc.
        guard FileIO.exists(loader), FileIO.exists(patchelf) else { return }
        let paths = libdir + ":" + glibcDir
        var adapted: [String: String] = [:]
        // patchelf last: the others are changed by the original, which then changes a copy of itself.
        let programs = manifest.entries.filter { $0.symlink == nil && $0.path.hasPrefix("bin/") }
            .sorted { ($0.path == "bin/patchelf" ? 1 : 0, $0.path) < ($1.path == "bin/patchelf" ? 1 : 0, $1.path) }
        for e in programs {
            let dest = destination(e.path)
            guard ElfFile.read(dest)?.interpreter != nil else { continue }
            let tmp = dest + ".adapt-\(getpid())"
            _ = unlink(tmp)
            try copyFile(dest, tmp)
            let r = Launcher.capture([loader, "--library-path", paths, patchelf, "--set-interpreter", loader, "--set-rpath", paths, tmp])
            guard let r, r.status == 0 else {
                _ = unlink(tmp)
                throw RuntimeError.toolsInstallFailed("cannot give \(e.path) the release's glibc: patchelf said \(r?.output ?? "nothing (it did not start)")",
                                                      "install the engines on the host, or name them with UDOCKER_USE_*_EXECUTABLE")
            }
            if rename(tmp, dest) != 0 { throw RuntimeError.io("rename", dest, errno) }
            adapted[e.path] = try ContainerStore.io { try SHA256Hasher.hash(fileAt: dest) }.0.hex
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try BlobContent.cas { try FileIO.writeAtomically(adaptedPath, Array(try e.encode(adapted)), mode: 0o644) }
    }
}
