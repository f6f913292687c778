// Builds a test image out of this host's own dynamically linked programs and the libraries they load
// (a Debian merged-/usr root), as an OCI layout tar for `udocker load -i`, for the execution tests.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What goes into a host image besides the base programs.
public struct HostImageSpec: Hashable, Sendable {
    /// The name the image is loaded as (the index's org.opencontainers.image.ref.name).
    public var name: String
    /// Added to the config's Env after PATH and IMAGE_VAR=from-image.
    public var extraEnv: [String]
    public var workingDir: String?
    public var cmd: [String]?
    public var entrypoint: [String]?
    public var user: String?
    /// Adds dpkg, dpkg-deb, dpkg-query, dpkg-split, the programs dpkg requires in PATH, and an empty
    /// dpkg database, so `dpkg -i local.deb` works as (fake) root.
    public var withDpkg: Bool
    /// More host programs (names looked up in /usr/bin, /usr/sbin, /bin, /sbin, or absolute paths);
    /// their libraries come along.
    public var extraPrograms: [String]
    /// Extra text files: absolute path in the image -> content (mode 0644, parents made 0755).
    public var files: [String: String]
    /// Extra executable files (mode 0755), e.g. entrypoint scripts.
    public var scripts: [String: String]
    /// Compresses the layer with gzip (else the layer is a plain tar, which is quicker to build).
    public var gzip: Bool
    /// Extra symlinks: absolute path in the image -> target (as written, relative or absolute), made
    /// after the files, e.g. Debian's /etc/os-release -> ../usr/lib/os-release.
    public var symlinks: [String: String]

    public init(name: String = "hostimg:latest", extraEnv: [String] = [], workingDir: String? = nil,
                cmd: [String]? = ["/bin/sh"], entrypoint: [String]? = nil, user: String? = nil,
                withDpkg: Bool = false, extraPrograms: [String] = [], files: [String: String] = [:],
                scripts: [String: String] = [:], gzip: Bool = false, symlinks: [String: String] = [:]) {
        self.name = name; self.extraEnv = extraEnv; self.workingDir = workingDir; self.cmd = cmd
        self.entrypoint = entrypoint; self.user = user; self.withDpkg = withDpkg
        self.extraPrograms = extraPrograms; self.files = files; self.scripts = scripts; self.gzip = gzip
        self.symlinks = symlinks
    }
}

public enum HostImage {
    /// Programs every host image has, copied from the host with their libraries.
    public static let basePrograms = [
        "sh", "dash", "bash", "ls", "cat", "echo", "env", "id", "pwd", "true", "false", "sleep", "touch",
        "mkdir", "rm", "ln", "cp", "mv", "printf", "head", "sha256sum", "readlink", "stat", "chmod",
        "test", "[", "uname", "whoami", "grep", "sed",
    ]
    /// dpkg and what it needs: dpkg -i refuses to start unless diff, ldconfig and start-stop-daemon
    /// are in PATH (besides sh, rm and tar), and runs dpkg-split and dpkg-deb (which runs tar).
    public static let dpkgPrograms = [
        "dpkg", "dpkg-deb", "dpkg-query", "dpkg-split", "tar", "diff", "ldconfig", "start-stop-daemon",
    ]
    /// The image's PATH (Debian's).
    public static let path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// The passwd user that is not root.
    public static let tester = (name: "tester", uid: 1000, gid: 1000, home: "/home/tester")

    /// The dynamic loader's real file inside the image (e.g. /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2).
    public static func loader() throws -> String { try hostFacts.get().loader }

    /// The directory of the image's libc (e.g. /usr/lib/x86_64-linux-gnu).
    public static func libraryDirectory() throws -> String { try hostFacts.get().libraryDirectory }

    /// Writes an OCI image layout tar holding one image named `spec.name` into `dir` (which must exist)
    /// and returns its path.
    public static func build(_ spec: HostImageSpec, into dir: String) throws -> String {
        let work = dir + "/hostimage-work-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeTree(work) }
        try FileManager.default.createDirectory(atPath: work + "/root", withIntermediateDirectories: true)
        try makeRootfs(spec, at: work + "/root")

        let layerTar = work + "/layer.tar"
        let top = try FileManager.default.contentsOfDirectory(atPath: work + "/root").sorted()
        try runCommand("/bin/tar", ["-C", work + "/root", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                                    "--mtime=@1700000000", "-cf", layerTar] + top)
        let (diffID, _) = try SHA256Hasher.hash(fileAt: layerTar)
        let layerFile: String, layerType: String
        if spec.gzip {
            layerFile = layerTar + ".gz"
            try Data(try runCommand("/bin/gzip", ["-n", "-1", "-c", layerTar])).write(to: URL(fileURLWithPath: layerFile))
            layerType = MediaTypeNames.ociGzip
        } else {
            layerFile = layerTar
            layerType = "application/vnd.oci.image.layer.v1.tar"
        }

        let oci = try OCILayout(dir: work + "/layout")
        let (layerDigest, layerSize) = try oci.addBlob(file: layerFile)
        let (configDigest, configSize) = try oci.addBlob(try json(configJSON(spec, diffID: diffID)))
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": MediaTypeNames.ociManifest,
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest.description, "size": configSize],
            "layers": [["mediaType": layerType, "digest": layerDigest.description, "size": layerSize]],
        ]
        let (md, ms) = try oci.addBlob(try json(manifest))
        oci.tag(["mediaType": MediaTypeNames.ociManifest, "digest": md.description, "size": ms,
                 "platform": ["architecture": try hostFacts.get().architecture, "os": "linux"]], as: spec.name)
        try oci.writeIndex()

        let out = dir + "/" + fileName(spec.name) + ".tar"
        try runCommand("/bin/tar", ["-C", work + "/layout", "-cf", out, "oci-layout", "index.json", "blobs"])
        return out
    }

    /// The image of `spec`, built once per test process (in a directory removed at exit); concurrent
    /// callers wait for one build.
    public static func shared(_ spec: HostImageSpec) throws -> String {
        try cache.image(spec)
    }

    /// Writes the image's root file system into the existing empty directory `root`.
    public static func makeRootfs(_ spec: HostImageSpec, at root: String) throws {
        let facts = try hostFacts.get()
        let tree = RootfsTree(root: root)
        // The merged-/usr links, as the host has them.
        for top in ["bin", "sbin", "lib", "lib64"] {
            if let target = readLink("/" + top) { try tree.symlink("/" + top, to: target) }
        }
        for d in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/etc", "/dev", "/proc", "/sys",
                  "/run", "/var/log", "/var/lib", "/var/cache", "/home"] {
            try tree.directory(d)
        }
        try tree.directory("/root", mode: 0o700)
        try tree.directory(tester.home, mode: 0o755)
        try tree.directory("/tmp", mode: 0o1777)
        try tree.directory("/var/tmp", mode: 0o1777)

        var programs = basePrograms + spec.extraPrograms
        if spec.withDpkg { programs += dpkgPrograms }
        var copied = [String]()
        for p in programs {
            let hostPath = try findProgram(p)
            copied.append(try tree.addHostPath(hostPath))
        }
        for lib in try sharedLibraries(of: copied) { _ = try tree.addHostPath(lib) }
        _ = try tree.addHostPath(facts.interpreter)

        try tree.file("/etc/passwd", """
            root:x:0:0:root:/root:/bin/sh
            daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
            nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
            \(tester.name):x:\(tester.uid):\(tester.gid):\(tester.name):\(tester.home):/bin/sh

            """)
        try tree.file("/etc/group", """
            root:x:0:
            daemon:x:1:
            nogroup:x:65534:
            \(tester.name):x:\(tester.gid):

            """)
        try tree.file("/etc/hostname", "hostimg\n")
        try tree.file("/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        try tree.file("/etc/nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n")

        if spec.withDpkg {
            for d in ["/var/lib/dpkg/info", "/var/lib/dpkg/updates", "/var/lib/dpkg/triggers",
                      "/var/lib/dpkg/alternatives", "/var/lib/dpkg/parts", "/etc/dpkg/dpkg.cfg.d",
                      "/etc/alternatives"] {
                try tree.directory(d)
            }
            try tree.file("/var/lib/dpkg/status", "")
            try tree.file("/var/lib/dpkg/available", "")
        }
        for (path, content) in spec.files { try tree.file(path, content) }
        for (path, content) in spec.scripts { try tree.file(path, content, mode: 0o755) }
        for (path, target) in spec.symlinks { try tree.symlink(path, to: target) }
    }

    /// Makes a .deb with `dpkg-deb --build` (Architecture: all, owned by root) installing `files`
    /// (absolute path -> content), in `dir`; returns its path.
    public static func buildDeb(name: String, version: String, files: [String: String], into dir: String) throws -> String {
        let pkg = dir + "/debroot-\(name)-\(version)-\(UInt32.random(in: 0...UInt32.max))"
        defer { removeTree(pkg) }
        let tree = RootfsTree(root: pkg)
        try FileManager.default.createDirectory(atPath: pkg, withIntermediateDirectories: true)
        try tree.directory("/DEBIAN")
        try tree.file("/DEBIAN/control", """
            Package: \(name)
            Version: \(version)
            Architecture: all
            Maintainer: udocker tests <tests@example.invalid>
            Description: test package made by the udocker tests

            """)
        for (path, content) in files { try tree.file(path, content) }
        let out = dir + "/\(name)_\(version)_all.deb"
        try runCommand("/usr/bin/dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", pkg, out],
                       environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C", "SOURCE_DATE_EPOCH": "1700000000"])
        return out
    }

    // MARK: internals

    private static func configJSON(_ spec: HostImageSpec, diffID: Digest) throws -> [String: Any] {
        var config: [String: Any] = ["Env": ["PATH=" + path, "IMAGE_VAR=from-image"] + spec.extraEnv]
        if let w = spec.workingDir { config["WorkingDir"] = w }
        if let c = spec.cmd { config["Cmd"] = c }
        if let e = spec.entrypoint { config["Entrypoint"] = e }
        if let u = spec.user { config["User"] = u }
        return ["architecture": try hostFacts.get().architecture, "os": "linux",
                "created": "2023-11-14T22:13:20Z", "config": config,
                "rootfs": ["type": "layers", "diff_ids": [diffID.description]],
                "history": [["created": "2023-11-14T22:13:20Z", "created_by": "udocker tests: HostImage.build"]]]
    }

    private static func json(_ object: [String: Any]) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    private static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
    }

    private static func findProgram(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] where access(dir + "/" + name, X_OK) == 0 {
            return dir + "/" + name
        }
        throw CommandError(description: "HostImage: the host has no program '\(name)' in /usr/bin, /usr/sbin, /bin or /sbin")
    }

    /// Every library `ldd` says the programs load (static programs have none).
    private static func sharedLibraries(of programs: [String]) throws -> [String] {
        let r = spawnAndCollect(["/usr/bin/ldd"] + programs, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], stdin: nil)
        var libs = Set<String>()
        for line in r.stdout.split(separator: "\n") where line.hasPrefix("\t") {
            let entry = line.dropFirst()
            if entry.contains("not found") {
                throw CommandError(description: "HostImage: ldd cannot find a library: \(entry)")
            }
            if let arrow = entry.range(of: " => ") {
                let rest = entry[arrow.upperBound...]
                libs.insert(String(rest.prefix { $0 != " " }))
            } else if entry.hasPrefix("/") {
                libs.insert(String(entry.prefix { $0 != " " }))
            }
        }
        if libs.isEmpty { throw CommandError(description: "HostImage: ldd \(programs.joined(separator: " ")) listed no library: \(r.stderr)") }
        return libs.sorted()
    }

    /// The host's program interpreter (ldd's line starting with "/"), its real file and the architecture.
    struct HostFacts {
        var interpreter: String
        var loader: String
        var libraryDirectory: String
        var architecture: String
    }

    static let hostFacts: Result<HostFacts, any Error> = Result {
        let r = spawnAndCollect(["/usr/bin/ldd", "/bin/sh"], environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], stdin: nil)
        var interpreter: String?, libc: String?
        for line in r.stdout.split(separator: "\n") {
            let entry = line.drop { $0 == "\t" || $0 == " " }
            if entry.hasPrefix("/") { interpreter = String(entry.prefix { $0 != " " }) }
            if entry.hasPrefix("libc.so"), let arrow = entry.range(of: " => ") {
                libc = String(entry[arrow.upperBound...].prefix { $0 != " " })
            }
        }
        guard let interpreter, let libc, let loader = realPath(interpreter), let libcReal = realPath(libc) else {
            throw CommandError(description: "HostImage: cannot find the host's loader and libc with ldd /bin/sh: \(r.stdout) \(r.stderr)")
        }
        var u = utsname()
        uname(&u)
        let machine = withUnsafeBytes(of: u.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let arch = ["x86_64": "amd64", "aarch64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
                    "armv7l": "arm", "i686": "386", "riscv64": "riscv64"][machine] ?? machine
        return HostFacts(interpreter: interpreter, loader: loader,
                         libraryDirectory: FileIO.parent(of: libcReal), architecture: arch)
    }

    private static let cache = ImageCache()
}

/// One directory of built images for the whole test process.
private final class ImageCache: @unchecked Sendable {
    private let lock = NSLock()
    private var dir: String?
    private var built: [HostImageSpec: String] = [:]

    func image(_ spec: HostImageSpec) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let path = built[spec] { return path }
        let base: String
        if let dir { base = dir } else {
            base = makeTempDir("hostimage")
            BackgroundProcesses.removeAtExit(base)
            dir = base
        }
        let sub = base + "/\(built.count)"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        let path = try HostImage.build(spec, into: sub)
        built[spec] = path
        return path
    }
}

/// A root file system being filled: paths are absolute inside the root.
private struct RootfsTree {
    let root: String

    /// Makes `path` and its missing parents (0755); `mode` is set on `path` when given.
    func directory(_ path: String, mode: mode_t? = nil) throws {
        var made = ""
        for c in path.split(separator: "/") {
            made += "/" + c
            var st = stat()
            if lstat(root + made, &st) == 0 { continue }
            guard mkdir(root + made, 0o755) == 0, chmod(root + made, 0o755) == 0 else { throw failure("mkdir", made) }
        }
        if let mode, chmod(root + path, mode) != 0 { throw failure("chmod", path) }
    }

    func file(_ path: String, _ content: String, mode: mode_t = 0o644) throws {
        try directory(FileIO.parent(of: path))
        try Data(content.utf8).write(to: URL(fileURLWithPath: root + path))
        guard chmod(root + path, mode) == 0 else { throw failure("chmod", path) }
    }

    func symlink(_ path: String, to target: String) throws {
        var st = stat()
        if lstat(root + path, &st) == 0 { return }
        try directory(FileIO.parent(of: path))
        guard Glibc.symlink(target, root + path) == 0 else { throw failure("symlink", path) }
    }

    /// Copies the host file `path` to the same path in the root, recreating every symlink met on
    /// the way (e.g. /lib64 -> usr/lib64, libz.so.1 -> libz.so.1.2.13) as a symlink; returns the
    /// host path of the file itself.
    func addHostPath(_ path: String, depth: Int = 0) throws -> String {
        guard depth < 40 else { throw CommandError(description: "HostImage: too many symlinks resolving \(path)") }
        let parts = path.split(separator: "/").map(String.init)
        var current = ""
        for (i, part) in parts.enumerated() {
            let p = current + "/" + part
            var st = stat()
            guard lstat(p, &st) == 0 else { throw failure("lstat (host)", p) }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                guard let target = readLink(p) else { throw failure("readlink (host)", p) }
                try symlink(p, to: target)
                let rest = parts[(i + 1)...].joined(separator: "/")
                let joined = (target.hasPrefix("/") ? target : current + "/" + target) + (rest.isEmpty ? "" : "/" + rest)
                return try addHostPath(normalized(joined), depth: depth + 1)
            case S_IFDIR:
                try directory(p)
            case S_IFREG:
                guard i == parts.count - 1 else { throw CommandError(description: "HostImage: \(p) is not a directory") }
                var have = stat()
                if lstat(root + p, &have) != 0 {
                    try FileManager.default.copyItem(atPath: p, toPath: root + p)
                    // Without setuid/setgid bits, and writable by the owner so the tree can be removed.
                    guard chmod(root + p, (st.st_mode & 0o777) | 0o200) == 0 else { throw failure("chmod", p) }
                }
            default:
                throw CommandError(description: "HostImage: \(p) is not a file, directory or symlink")
            }
            current = p
        }
        return current
    }

    private func normalized(_ path: String) -> String {
        var out = [Substring]()
        for c in path.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { _ = out.popLast(); continue }
            out.append(c)
        }
        return "/" + out.joined(separator: "/")
    }

    private func failure(_ what: String, _ path: String) -> CommandError {
        CommandError(description: "HostImage: \(what) \(path) failed: \(String(cString: strerror(errno)))")
    }
}

private func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func realPath(_ path: String) -> String? {
    guard let r = realpath(path, nil) else { return nil }
    defer { free(r) }
    return String(cString: r)
}
