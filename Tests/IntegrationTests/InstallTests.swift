// udocker install: a bundle built by scripts/build-tools-bundle.sh from the host's Debian packages
// installs and its proot runs without LD_LIBRARY_PATH; hostile bundles are refused and leave nothing.
import CAS
import Foundation
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Install") struct InstallTests {
    static var packageRoot: String {
        var root = #filePath
        for _ in 0..<3 { root = FileIO.parent(of: root) }
        return root
    }

    static var hostArch: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }

    /// The Debian packages the bundle script takes its files from (scripts/setup-host.sh installs them).
    static let bundlePackages = ["proot", "runc", "crun", "patchelf", "libfakechroot", "busybox-static"]

    static func hostHasBundlePackages() -> Bool {
        bundlePackages.allSatisfy { p in
            guard let out = try? runCommand("/usr/bin/dpkg-query", ["-W", "-f=${Status}", p]) else { return false }
            return String(decoding: out, as: UTF8.self).hasSuffix("ok installed")
        }
    }

    func read(_ path: String) -> String {
        (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? "<missing \(path)>"
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
    }

    func inode(_ path: String) -> ino_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_ino : 0
    }

    /// Entries of a directory, without the installer's lock file.
    func entries(_ dir: String) -> [String] {
        ((try? FileIO.listDirectory(dir)) ?? []).filter { $0 != ".install.lock" }.sorted()
    }

    // MARK: the real bundle

    @Test(.enabled(if: hostHasBundlePackages(),
                   "the host lacks proot, runc, crun, patchelf, libfakechroot or busybox-static: run scripts/setup-host.sh as root"))
    func bundleFromDebianPackagesInstallsAndRuns() throws {
        let tmp = makeTempDirectory("install")
        defer { try? FileIO.removeTree(tmp) }
        let bundle = tmp + "/tools.tar.gz"
        let built = spawnAndCollect(["/bin/bash", Self.packageRoot + "/scripts/build-tools-bundle.sh", bundle],
                                    environment: ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "TMPDIR": tmp], stdin: nil)
        try #require(built.status == 0, "build-tools-bundle.sh failed: \(built.stderr)")
        #expect(built.stdout == bundle + "\n")

        let repo = tmp + "/repo"
        let r = runUdocker(["install", "--from=" + bundle], env: ["UDOCKER_DIR": repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Info: installation of udockertools successful\n"))
        for tool in ["proot", "runc", "crun", "patchelf"] {
            #expect(r.stdout.contains("\(tool): \(repo)/bin/\(tool) (repository)\n"), "\(r.stdout)")
            #expect(mode(repo + "/bin/" + tool) == 0o755)
        }
        #expect(r.stdout.contains("libfakechroot: \(repo)/lib/libfakechroot.so (repository)\n"))
        for lib in ["libfakechroot.so", "libtalloc.so.2", "libseccomp.so.2", "libyajl.so.2", "BUNDLE.json"] {
            #expect(mode(repo + "/lib/" + lib) == 0o644, "lib/\(lib)")
        }
        for glibc in ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"] {
            #expect(!FileIO.exists(repo + "/lib/" + glibc), "glibc's \(glibc) must not be bundled")
        }
        #expect(!((try? FileIO.listDirectory(repo)) ?? []).contains { $0.hasPrefix(".tmp.") }, "staging left behind")

        // The manifest names the Debian package and version of every file.
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(FileIO.readFile(repo + "/lib/BUNDLE.json"))) as? [String: Any])
        #expect(manifest["format"] as? Int == 1)
        #expect(manifest["arch"] as? String == Self.hostArch)
        let files = try #require(manifest["files"] as? [[String: Any]])
        let proot = try #require(files.first { $0["path"] as? String == "bin/proot" })
        #expect(proot["package"] as? String == "proot")
        #expect((proot["version"] as? String ?? "").isEmpty == false)
        #expect(files.allSatisfy { ($0["sha256"] as? String)?.count == 64 && $0["size"] is Int && $0["package"] is String })

        // The installed proot runs a program in a tiny rootfs, with no LD_LIBRARY_PATH anywhere.
        let rootfs = tmp + "/rootfs"
        try FileIO.mkdirs(rootfs + "/bin")
        try runCommand("/bin/cp", ["/bin/busybox", rootfs + "/bin/busybox"])
        let run = spawnAndCollect([repo + "/bin/proot", "-w", "/", "-r", rootfs, "/bin/busybox", "echo", "ok"],
                                  environment: ["PATH": "/usr/bin:/bin", "HOME": tmp, "PROOT_TMP_DIR": tmp], stdin: nil)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "ok\n")
        // Its libraries come from the repository's lib/ through RUNPATH, even where the host has them.
        let trace = spawnAndCollect([repo + "/bin/crun"], environment: ["LD_TRACE_LOADED_OBJECTS": "1"], stdin: nil)
        #expect(trace.stdout.contains("libyajl.so.2 => \(repo)/bin/../lib/libyajl.so.2"), "\(trace.stdout)")
        #expect(trace.stdout.contains("libgpg-error.so.0 => \(repo)/bin/../lib/libgpg-error.so.0"), "\(trace.stdout)")
        for p in ["runc", "crun", "patchelf"] {
            let v = spawnAndCollect([repo + "/bin/" + p, "--version"], environment: [:], stdin: nil)
            #expect(v.status == 0, "bin/\(p) --version: \(v.stderr)")
        }

        // Without --from nothing is downloaded; the repository's tools are reported.
        let report = runUdocker(["install"], env: ["UDOCKER_DIR": repo])
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("nothing was downloaded"))
        #expect(report.stdout.contains("bundle: \(repo)/lib/BUNDLE.json (\(Self.hostArch), "))
        #expect(report.stdout.contains("proot: \(repo)/bin/proot (repository)\n"))

        let again = runUdocker(["install", "--from=" + bundle], env: ["UDOCKER_DIR": repo])
        #expect(again.status == 0)
        #expect(again.stdout.contains("is already installed"))
        let forced = runUdocker(["install", "--force", "--from=file://" + bundle], env: ["UDOCKER_DIR": repo])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("Info: installation of udockertools successful\n"))
    }

    // MARK: small bundles made here

    struct Member {
        var path: String
        var content: [UInt8] = []
        var symlink: String? = nil
    }

    /// BUNDLE.json for `members`, as the bundle script writes it.
    static func manifest(_ members: [Member], arch: String = hostArch) throws -> String {
        let files = try members.map { m -> String in
            if let t = m.symlink { return "{\"path\": \"\(m.path)\", \"symlink\": \"\(t)\"}" }
            return "{\"path\": \"\(m.path)\", \"sha256\": \"\(try sha256Digest(m.content).hex)\", \"size\": \(m.content.count), \"package\": \"test\", \"version\": \"1\"}"
        }
        return "{\"format\": 1, \"arch\": \"\(arch)\", \"files\": [\(files.joined(separator: ", "))]}"
    }

    static let tool = Member(path: "bin/tool", content: Array("#!/bin/sh\necho tool\n".utf8))
    static let lib = Member(path: "lib/libx.so.1", content: Array("not really ELF\n".utf8))
    static let libLink = Member(path: "lib/libx.so", symlink: "libx.so.1")

    /// A plain tar: BUNDLE.json, bin/, lib/, the members (modes as an archive might have them).
    static func bundle(_ members: [Member], manifest: String? = nil) throws -> TarBuilder {
        var t = TarBuilder()
        t.file("BUNDLE.json", try manifest ?? Self.manifest(members))
        t.directory("bin")
        t.directory("lib")
        for m in members {
            if let target = m.symlink { t.symlink(m.path, to: target) } else { t.file(m.path, m.content, mode: 0o600) }
        }
        return t
    }

    @Test func installReportsWithoutDownloading() throws {
        let tmp = makeTempDirectory("install")
        defer { try? FileIO.removeTree(tmp) }
        let repo = tmp + "/repo"
        let r = runUdocker(["install"], env: ["UDOCKER_DIR": repo, "PATH": tmp + "/empty",
                                             "UDOCKER_USE_RUNC_EXECUTABLE": tmp + "/no-such-runc"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("nothing was downloaded"))
        #expect(r.stdout.contains("bundle: none installed in \(repo)\n"))
        #expect(r.stdout.contains("proot: not found\n"))
        #expect(r.stdout.contains("runc: unusable: "))
        #expect(r.stdout.contains("apptainer/singularity: not found\n"))
        #expect(entries(repo + "/bin").isEmpty && entries(repo + "/lib").isEmpty)

        let help = runUdocker(["install", "--help"])
        #expect(help.stdout.hasPrefix("install: install udocker and its tools\n"))
        #expect(help.stdout.contains("--purge"))
    }

    @Test func smallBundleInstallsForceReinstallsAndRepairs() throws {
        let tmp = makeTempDirectory("install")
        defer { try? FileIO.removeTree(tmp) }
        let repo = tmp + "/repo"
        let file = tmp + "/b.tar"
        try Self.bundle([Self.tool, Self.lib, Self.libLink]).write(to: file)

        let r = runUdocker(["install", "--from=" + file], env: ["UDOCKER_DIR": repo])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(entries(repo + "/bin") == ["tool"])
        #expect(entries(repo + "/lib") == ["BUNDLE.json", "libx.so", "libx.so.1"])
        #expect(mode(repo + "/bin/tool") == 0o755)
        #expect(mode(repo + "/lib/libx.so.1") == 0o644)
        #expect(read(repo + "/lib/libx.so") == "not really ELF\n")
        #expect(read(repo + "/bin/tool") == "#!/bin/sh\necho tool\n")

        let first = inode(repo + "/bin/tool")
        let same = runUdocker(["install", "--from=" + file], env: ["UDOCKER_DIR": repo])
        #expect(same.status == 0)
        #expect(same.stdout.contains("this tools bundle is already installed in \(repo): nothing changed"))
        #expect(inode(repo + "/bin/tool") == first)

        let forced = runUdocker(["install", "--force", "--from=" + file], env: ["UDOCKER_DIR": repo])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(forced.stdout.contains("installation of udockertools successful"))
        #expect(inode(repo + "/bin/tool") != first)

        // A damaged installed file is not "already installed": the same bundle puts it back.
        try FileIO.writeAtomically(repo + "/bin/tool", Array("changed".utf8), mode: 0o755)
        let repaired = runUdocker(["install", "--from=" + file], env: ["UDOCKER_DIR": repo])
        #expect(repaired.stdout.contains("installation of udockertools successful"))
        #expect(read(repo + "/bin/tool") == "#!/bin/sh\necho tool\n")

        // A newer bundle without the symlink replaces the old one, removing what it no longer has.
        let newer = tmp + "/newer.tar"
        let tool2 = Member(path: "bin/tool", content: Array("#!/bin/sh\necho tool 2\n".utf8))
        try Self.bundle([tool2, Self.lib]).write(to: newer)
        let updated = runUdocker(["install", "--from=file://" + newer], env: ["UDOCKER_DIR": repo])
        #expect(updated.status == 0, "\(updated.stderr)")
        #expect(entries(repo + "/lib") == ["BUNDLE.json", "libx.so.1"])
        #expect(read(repo + "/bin/tool") == "#!/bin/sh\necho tool 2\n")

        // A refused bundle leaves the installed one as it was, even with --force.
        let bad = tmp + "/bad.tar"
        var lying = Self.tool
        lying.content = Array("#!/bin/sh\necho evil\n".utf8)
        try Self.bundle([lying, Self.lib], manifest: try Self.manifest([Self.tool, Self.lib])).write(to: bad)
        let refused = runUdocker(["install", "--force", "--from=" + bad], env: ["UDOCKER_DIR": repo])
        #expect(refused.status == 1)
        #expect(read(repo + "/bin/tool") == "#!/bin/sh\necho tool 2\n")
        #expect(entries(repo + "/lib") == ["BUNDLE.json", "libx.so.1"])

        // --purge empties bin/ and lib/, including files the user put there.
        try FileIO.writeAtomically(repo + "/bin/mine", Array("x".utf8))
        let purged = runUdocker(["install", "--purge"], env: ["UDOCKER_DIR": repo])
        #expect(purged.status == 0, "\(purged.stderr)")
        #expect(purged.stdout.contains("bundle: none installed"))
        #expect(entries(repo + "/bin").isEmpty && entries(repo + "/lib").isEmpty)
    }

    @Test func tarballSettingAndHTTP() throws {
        let tmp = makeTempDirectory("install")
        defer { try? FileIO.removeTree(tmp) }
        let file = tmp + "/b.tar"
        let archive = try Self.bundle([Self.tool, Self.lib]).archive
        try Data(archive).write(to: URL(fileURLWithPath: file))

        // UDOCKER_TARBALL naming a local bundle (after udocker's http URLs, which are skipped).
        let viaSetting = runUdocker(["install"], env: ["UDOCKER_DIR": tmp + "/a",
                                                       "UDOCKER_TARBALL": "https://example.invalid/t.tar.gz file://" + file])
        #expect(viaSetting.status == 0, "\(viaSetting.stderr)")
        #expect(viaSetting.stdout.contains("installing tools bundle from file://\(file)"))
        #expect(entries(tmp + "/a/bin") == ["tool"])

        let server = try TinyServer { req in
            req.target == "/tools.tar" ? .respond(status: 200, headers: [], body: archive)
                : .respond(status: 404, headers: [], body: Array("no".utf8))
        }
        defer { server.stop() }
        let viaHTTP = runUdocker(["install", "--from=http://127.0.0.1:\(server.port)/tools.tar"], env: ["UDOCKER_DIR": tmp + "/b"])
        #expect(viaHTTP.status == 0, "\(viaHTTP.stderr)")
        #expect(entries(tmp + "/b/bin") == ["tool"])
        let missing = runUdocker(["install", "--from=http://127.0.0.1:\(server.port)/other.tar"], env: ["UDOCKER_DIR": tmp + "/c"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("the server answered HTTP 404"), "\(missing.stderr)")
        #expect(entries(tmp + "/c/bin").isEmpty)
    }

    enum Hostile: String, CaseIterable, Sendable {
        case dotdot, absolute, symlinkOutside, symlinkAbsolute, symlinkAcross, symlinkDangling, wrongDigest, wrongSize, hardlink, subdirectory,
             unlisted, missingFile, wrongArch, noManifest, udockerTarball
    }

    @Test(arguments: Hostile.allCases)
    func hostileBundleIsRefused(_ kind: Hostile) throws {
        let tmp = makeTempDirectory("install")
        defer { try? FileIO.removeTree(tmp) }
        let repo = tmp + "/repo"
        let outside = tmp + "/outside"
        var t: TarBuilder
        let message: String
        switch kind {
        case .dotdot:
            t = try Self.bundle([Self.tool])
            t.file("bin/../../outside", "evil")
            message = "entry 'bin/../../outside' contains '..'"
        case .absolute:
            t = try Self.bundle([Self.tool])
            t.file(outside, "evil")
            message = "entry '\(outside)' has an absolute path"
        case .symlinkOutside:
            let link = Member(path: "bin/proot", symlink: "../../outside")
            t = try Self.bundle([Self.tool, link])
            message = "entry 'bin/proot' is a symlink to '../../outside', which is not a file name beside it"
        case .symlinkAbsolute:
            let link = Member(path: "lib/libc.so.6", symlink: outside)
            t = try Self.bundle([Self.tool, link], manifest: try Self.manifest([Self.tool]))
            message = "entry 'lib/libc.so.6' is a symlink to '\(outside)', which is not a file name beside it"
        case .symlinkAcross:
            let link = Member(path: "bin/libx", symlink: "../lib/libx.so.1")
            t = try Self.bundle([Self.lib, link])
            message = "entry 'bin/libx' is a symlink to '../lib/libx.so.1', which is not a file name beside it"
        case .symlinkDangling:
            let link = Member(path: "lib/libx.so", symlink: "libnone.so")
            t = try Self.bundle([Self.tool, link])
            message = "'lib/libx.so' is a symlink to 'libnone.so', which is not a file of the bundle"
        case .wrongDigest:
            var lying = Self.tool
            lying.content = Array("#!/bin/sh\necho evil\n".utf8)
            t = try Self.bundle([lying], manifest: try Self.manifest([Self.tool]))
            message = "'bin/tool' has sha256 \(try sha256Digest(lying.content).hex), its BUNDLE.json says \(try sha256Digest(Self.tool.content).hex)"
        case .wrongSize:
            var longer = Self.tool
            longer.content += Array("rm -rf ~\n".utf8)
            t = try Self.bundle([longer], manifest: try Self.manifest([Self.tool]))
            message = "'bin/tool' is 29 bytes, its BUNDLE.json says 20"
        case .hardlink:
            t = try Self.bundle([Self.tool])
            t.hardlink("bin/other", to: "bin/tool")
            message = "entry 'bin/other' is a hard link"
        case .subdirectory:
            t = try Self.bundle([Self.tool])
            t.file("lib/sub/libx.so", "x")
            message = "entry 'lib/sub/libx.so' is not bin/NAME or lib/NAME"
        case .unlisted:
            t = try Self.bundle([Self.tool, Self.lib], manifest: try Self.manifest([Self.tool]))
            message = "it holds 'lib/libx.so.1', which its BUNDLE.json does not list"
        case .missingFile:
            t = try Self.bundle([Self.tool], manifest: try Self.manifest([Self.tool, Self.lib]))
            message = "its BUNDLE.json lists 'lib/libx.so.1', which is not in the archive"
        case .wrongArch:
            t = try Self.bundle([Self.tool], manifest: try Self.manifest([Self.tool], arch: "sparc"))
            message = "it is built for sparc, this host is \(Self.hostArch)"
        case .noManifest:
            t = TarBuilder()
            t.file("bin/tool", Self.tool.content)
            message = "it has no BUNDLE.json at its top"
        case .udockerTarball:
            // udocker 1.3's udockertools tarballs keep everything under udocker_dir/.
            t = TarBuilder()
            t.file("udocker_dir/bin/proot-x86_64", "x")
            message = "entry 'udocker_dir/bin/proot-x86_64' is not bin/NAME or lib/NAME"
        }
        let file = tmp + "/hostile.tar"
        try t.write(to: file)
        let r = runUdocker(["install", "--from=" + file], env: ["UDOCKER_DIR": repo])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("Error: tools bundle \(file) refused: "), "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(r.stderr.hasSuffix("nothing was installed (make a bundle with scripts/build-tools-bundle.sh)\n"))
        #expect(entries(repo + "/bin").isEmpty, "\(entries(repo + "/bin"))")
        #expect(entries(repo + "/lib").isEmpty, "\(entries(repo + "/lib"))")
        #expect(!FileIO.exists(outside))
        #expect(!((try? FileIO.listDirectory(repo)) ?? []).contains { $0.hasPrefix(".tmp.") }, "staging left behind")
    }
}
