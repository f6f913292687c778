// `setup --nvidia` through the udocker binary with a fake driver tree (libraries with their
// symlinks, an nvidia-smi script, device files): what lands in the container, and `run` using it.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite("Nvidia") struct NvidiaTests {
    /// A fake driver under `dir`: lib/ with libcuda and libnvidia-ml (versioned files and their
    /// links), an unrelated library, tls/; bin/nvidia-smi; dev/nvidia0 and dev/nvidiactl.
    static func fakeDriver(_ dir: String) throws {
        let lib = dir + "/lib"
        try FileIO.mkdirs(lib + "/tls")
        try writeFile(lib + "/libcuda.so.535.1", "cuda 535.1\n")
        try FileManager.default.createSymbolicLink(atPath: lib + "/libcuda.so.1", withDestinationPath: "libcuda.so.535.1")
        try FileManager.default.createSymbolicLink(atPath: lib + "/libcuda.so", withDestinationPath: "libcuda.so.1")
        try writeFile(lib + "/libnvidia-ml.so.535.1", "nvml 535.1\n")
        try FileManager.default.createSymbolicLink(atPath: lib + "/libnvidia-ml.so.1", withDestinationPath: "libnvidia-ml.so.535.1")
        try writeFile(lib + "/tls/libnvidia-tls.so.535.1", "tls\n")
        try writeFile(lib + "/libunrelated.so.1", "no\n")
        try FileIO.mkdirs(dir + "/bin")
        try writeExecutable(dir + "/bin/nvidia-smi", "#!/bin/sh\necho \"NVIDIA-SMI fake 535.1 args:$*\"\n")
        try FileIO.mkdirs(dir + "/dev")
        try writeFile(dir + "/dev/nvidia0", "gpu0\n")
        try writeFile(dir + "/dev/nvidiactl", "ctl\n")
    }

    /// The repository's configuration pointing the search at the fake tree only.
    static func configure(_ r: ImportedBusyboxRepo, driver: String, ldconfig: String = "None") throws {
        try r.configure(["lib_dirs_list_nvidia = ('\(driver)/lib',)",
                         "nvi_ldconfig = \(ldconfig)",
                         "nvi_dev_list = ['\(driver)/dev/nvidia']",
                         "nvi_etc_list = ['os-release', 'vulkan/icd.d/nvidia_icd.json']"])
    }

    static func pathWith(_ dir: String) -> String {
        dir + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    }

    func fileType(_ p: String) -> mode_t? {
        var st = stat()
        return lstat(p, &st) == 0 ? st.st_mode & S_IFMT : nil
    }

    @Test func setupCopiesLibrariesToolsAndConfigurationAndRunUsesThem() throws {
        let r = try ImportedBusyboxRepo(label: "nvidia")
        let id = try r.create("c")
        let driver = r.tmp + "/driver"
        try Self.fakeDriver(driver)
        try Self.configure(r, driver: driver)
        let extra = ["PATH": Self.pathWith(driver + "/bin")]

        #expect(r.run(["setup", "c"]).stdout == "execmode: P1\nnvidiamode: False\n")
        let s = r.run(["setup", "--nvidia", "c"], extra)
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stdout == "Info: nvidia mode set\n", "\(s.stdout)")
        #expect(r.run(["setup", "c"]).stdout == "execmode: P1\nnvidiamode: True\n")

        let root = r.containerDir(id) + "/ROOT"
        let lib = root + "/" + ImportedBusyboxRepo.tripletLibDir
        // Symlinks stay symlinks, the files they name are copied.
        #expect(readLinkAt(lib + "/libcuda.so.1") == "libcuda.so.535.1")
        #expect(readLinkAt(lib + "/libcuda.so") == "libcuda.so.1")
        #expect(readLinkAt(lib + "/libnvidia-ml.so.1") == "libnvidia-ml.so.535.1")
        #expect(r.text(lib + "/libcuda.so.535.1") == "cuda 535.1\n")
        #expect(r.text(lib + "/libnvidia-ml.so.535.1") == "nvml 535.1\n")
        #expect(r.text(lib + "/tls/libnvidia-tls.so.535.1") == "tls\n")
        #expect(!FileIO.exists(lib + "/libunrelated.so.1"), "only nvi_lib_list prefixes are copied")
        #expect(fileType(root + "/usr/bin/nvidia-smi") == S_IFREG)
        #expect(access(root + "/usr/bin/nvidia-smi", X_OK) == 0)
        // /etc files are copied with symlinks followed (Debian's os-release is one).
        #expect(r.text(root + "/etc/os-release") == r.text("/etc/os-release"))
        #expect(fileType(root + "/etc/os-release") == S_IFREG)
        #expect(!FileIO.exists(root + "/etc/vulkan"), "files the host lacks are not made up")

        // The marker lists what was added.
        let marker = (r.text(r.containerDir(id) + "/nvidia") ?? "").split(separator: "\n").map(String.init)
        let libDir = "/" + ImportedBusyboxRepo.tripletLibDir
        #expect(Set(marker) == [libDir + "/libcuda.so.535.1", libDir + "/libcuda.so.1", libDir + "/libcuda.so",
                                libDir + "/libnvidia-ml.so.535.1", libDir + "/libnvidia-ml.so.1",
                                libDir + "/tls/libnvidia-tls.so.535.1", "/usr/bin/nvidia-smi", "/etc/os-release"], "\(marker)")

        // The tool runs in the container (P1), and the devices are bound there.
        let smi = r.run(["run", "--nobanner", "c", "nvidia-smi", "-L"])
        #expect(smi.status == 0, "\(smi.stderr)")
        #expect(smi.stdout == "NVIDIA-SMI fake 535.1 args:-L\n", "\(smi.stdout)")
        let dev = r.run(["run", "--nobanner", "--nosysdirs", "c", "/bin/cat", driver + "/dev/nvidia0", driver + "/dev/nvidiactl"])
        #expect(dev.status == 0, "\(dev.stderr)")
        #expect(dev.stdout == "gpu0\nctl\n")
        // Without --nvidia set up the devices are not bound.
        _ = try r.create("plain")
        let none = r.run(["run", "--nobanner", "--nosysdirs", "plain", "/bin/cat", driver + "/dev/nvidia0"])
        #expect(none.status != 0)

        // Again: refused without --force (nothing changed), done with it.
        let again = r.run(["setup", "--nvidia", "c"], extra)
        #expect(again.status == 1)
        #expect(again.stderr.hasPrefix("Error: nvidia installation already exists in the container"), "\(again.stderr)")
        #expect(again.stderr.contains("--force"))
        try writeFile(driver + "/lib/libcuda.so.535.1", "cuda 535.2\n")
        let forced = r.run(["setup", "--nvidia", "--force", "c"], extra)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(r.text(lib + "/libcuda.so.535.1") == "cuda 535.2\n")
    }

    @Test func aStoreLinkedFileIsReplacedNeverWrittenThrough() throws {
        // The image already has a libcuda.so.1 under /usr (linked to the store in auto mode).
        let libPath = ImportedBusyboxRepo.tripletLibDir + "/libcuda.so.1"
        let r = try ImportedBusyboxRepo(label: "nvidia-link", extraFiles: [libPath: "image's own\n"])
        let id = try r.create("c")
        let other = try r.create("other")
        let driver = r.tmp + "/driver"
        try Self.fakeDriver(driver)
        try Self.configure(r, driver: driver)
        let extra = ["PATH": Self.pathWith(driver + "/bin")]

        let refused = r.run(["setup", "--nvidia", "c"], extra)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("/" + libPath), "\(refused.stderr)")
        #expect(!FileIO.exists(r.containerDir(id) + "/nvidia"))
        #expect(r.run(["setup", "c"]).stdout.hasSuffix("nvidiamode: False\n"))

        let forced = r.run(["setup", "--nvidia", "--force", "c"], extra)
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(readLinkAt(r.containerDir(id) + "/ROOT/" + libPath) == "libcuda.so.535.1")
        // The other container (and the store) still have the image's file.
        #expect(r.text(r.containerDir(other) + "/ROOT/" + libPath) == "image's own\n")
        let again = try r.create("third")
        #expect(r.text(r.containerDir(again) + "/ROOT/" + libPath) == "image's own\n")
    }

    @Test func librariesFoundThroughLdconfigForThisArchitectureOnly() throws {
        let r = try ImportedBusyboxRepo(label: "nvidia-ldconfig")
        let id = try r.create("c")
        let driver = r.tmp + "/driver"
        try Self.fakeDriver(driver)
        // A 32-bit copy with the same names, which must not overwrite the 64-bit one.
        try FileIO.mkdirs(driver + "/lib32")
        try writeFile(driver + "/lib32/libcuda.so.535.1", "cuda 32-bit\n")
        #if arch(arm64)
        let arch = "AArch64"
        #else
        let arch = "x86-64"
        #endif
        let ldconfig = r.tmp + "/fake-ldconfig"
        try writeExecutable(ldconfig, """
            #!/bin/sh
            [ "$1" = "-p" ] || exit 1
            echo "3 libs found in cache \\`/etc/ld.so.cache'"
            printf '\\tlibcuda.so.535.1 (libc6) => \(driver)/lib32/libcuda.so.535.1\\n'
            printf '\\tlibcuda.so.1 (libc6,\(arch)) => \(driver)/lib/libcuda.so.1\\n'
            printf '\\tlibz.so.1 (libc6,\(arch)) => /lib/libz.so.1\\n'

            """)
        try Self.configure(r, driver: r.tmp + "/nowhere", ldconfig: ldconfig)
        let s = r.run(["-D", "setup", "--nvidia", "c"], ["PATH": Self.pathWith(driver + "/bin")])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(s.stderr.contains("nvidia libraries from \(driver)/lib into"), "\(s.stderr)")
        #expect(!s.stderr.contains("lib32"), "\(s.stderr)")
        let lib = r.containerDir(id) + "/ROOT/" + ImportedBusyboxRepo.tripletLibDir
        #expect(r.text(lib + "/libcuda.so.535.1") == "cuda 535.1\n")
    }

    @Test func noDriverOnTheHostIsAClearError() throws {
        let r = try ImportedBusyboxRepo(label: "nvidia-none")
        let id = try r.create("c")
        try Self.configure(r, driver: r.tmp + "/nowhere")
        let s = r.run(["setup", "--nvidia", "c"], ["LD_LIBRARY_PATH": r.tmp])
        #expect(s.status == 1)
        #expect(s.stderr.hasPrefix("Error: host NVIDIA libraries not found"), "\(s.stderr)")
        #expect(s.stderr.contains("lib_dirs_list_nvidia"))
        #expect(s.stderr.split(separator: "\n").count == 1)
        #expect(!FileIO.exists(r.containerDir(id) + "/nvidia"))
    }
}
