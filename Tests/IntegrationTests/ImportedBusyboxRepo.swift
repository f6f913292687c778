// A repository with a container made from a small rootfs (busybox-static and its applets, an
// /etc/passwd, the usual library directories) brought in with `udocker import`: no registry needed.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class ImportedBusyboxRepo {
    let tmp: String
    var env: [String: String]
    var repo: String { tmp + "/repo" }

    static var tripletLibDir: String {
        #if arch(arm64)
        return "usr/lib/aarch64-linux-gnu"
        #else
        return "usr/lib/x86_64-linux-gnu"
        #endif
    }

    /// `extraFiles`: relative path -> content, added to the rootfs before it is imported; `links`:
    /// relative path -> symlink target; `env`: more environment for every command, the import included.
    init(label: String, extraFiles: [String: String] = [:], links: [String: String] = [:], env extra: [String: String] = [:]) throws {
        tmp = makeTempDirectory(label)
        env = ["UDOCKER_DIR": tmp + "/repo"].merging(extra) { $1 }
        let rootfs = tmp + "/rootfs"
        for d in ["bin", "etc", "usr/bin", Self.tripletLibDir, "tmp", "var/tmp", "root", "home/user"] {
            try FileIO.mkdirs(rootfs + "/" + d)
        }
        try FileManager.default.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for applet in ["sh", "cat", "ls", "echo", "env", "pwd", "id", "true", "false", "readlink"] {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
        }
        // The user running the tests has an entry too (home /home/user), as on a real image's host.
        let me = getuid() == 0 ? "" : "user:x:\(getuid()):\(getgid()):user:/home/user:/bin/sh\n"
        try writeFile(rootfs + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n" + me)
        try writeFile(rootfs + "/etc/group", "root:x:0:\n")
        for (path, content) in extraFiles {
            try FileIO.mkdirs(FileIO.parent(of: rootfs + "/" + path))
            try writeFile(rootfs + "/" + path, content)
        }
        for (path, target) in links {
            try FileManager.default.createSymbolicLink(atPath: rootfs + "/" + path, withDestinationPath: target)
        }
        _ = try runCommand("/bin/tar", ["-C", rootfs, "-cf", tmp + "/rootfs.tar", "."])
        let imp = run(["import", tmp + "/rootfs.tar", "test/bb:1"])
        try #require(imp.status == 0, "import: \(imp.stderr)")
    }
    deinit {
        // Containers may hold read-only directories (store links); make them removable first.
        _ = try? runCommand("/bin/chmod", ["-R", "u+rwX", tmp])
        try? FileIO.removeTree(tmp)
    }

    func run(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: env.merging(extra) { $1 })
    }

    /// Creates a container named `name` and returns its id.
    func create(_ name: String) throws -> String {
        let c = run(["create", "--name=" + name, "test/bb:1"])
        try #require(c.status == 0, "create: \(c.stderr)")
        return c.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func containerDir(_ id: String) -> String { repo + "/containers/" + id }

    /// Records the container's execution mode the way udocker keeps it (its execmode file).
    func setMode(_ id: String, _ mode: String) throws {
        try FileIO.writeAtomically(containerDir(id) + "/execmode", Array(mode.utf8))
    }

    /// Writes the repository's udocker.conf (read because the repository is not ~/.udocker).
    func configure(_ lines: [String]) throws {
        try FileIO.writeAtomically(repo + "/udocker.conf", Array((["[DEFAULT]"] + lines).joined(separator: "\n").utf8 + [10]))
    }

    func text(_ path: String) -> String? {
        (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
    }
}

func readLinkAt(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Written close-on-exec and renamed into place: a child another test spawns meanwhile must not
/// inherit a write descriptor, or starting the script fails with "Text file busy".
func writeExecutable(_ path: String, _ text: String) throws {
    try FileIO.writeAtomically(path, Array(text.utf8), mode: 0o755)
}
