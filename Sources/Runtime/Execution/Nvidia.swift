// `setup --nvidia`: copies the host's NVIDIA driver libraries, tools and configuration files into a
// container (as udocker's NvidiaMode does), records it, and lists the /dev/nvidia* devices `run` binds.
#if canImport(Glibc)
import Glibc
#endif
import CAS

/// What `setup --nvidia` added to a container.
public struct NvidiaReport: Sendable, Equatable {
    /// Container paths of the files added, in the order they were written.
    public var added: [String] = []
    /// Host directories the libraries came from.
    public var hostLibraryDirs: [String] = []
    /// The container directory the libraries went to.
    public var containerLibraryDir = ""
    /// Configured names found nowhere on the host (nvi_bin_list, nvi_etc_list), for debug output.
    public var notFound: [String] = []
}

public struct NvidiaMode: Sendable {
    /// The marker in the container directory (udocker's name). It holds the files added, one per line.
    public static let markerFile = "nvidia"

    public let configuration: Configuration
    public let environment: [String: String]

    /// The libraries whose presence marks a directory as holding the driver (udocker's choice).
    static let mainLibraries = ["libnvidia-cfg.so", "libcuda.so"]

    public init(configuration: Configuration, environment: [String: String]) {
        self.configuration = configuration
        self.environment = environment
    }

    // MARK: state

    public static func isEnabled(containerDir: String) -> Bool {
        FileIO.exists(containerDir + "/" + markerFile)
    }

    /// The container paths `setup --nvidia` recorded (empty for udocker's empty marker).
    public static func recordedFiles(containerDir: String) -> [String] {
        guard let b = try? FileIO.readFile(containerDir + "/" + markerFile) else { return [] }
        return String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The host devices that exist for the nvi_dev_list prefixes ('/dev/nvidia' gives /dev/nvidia0,
    /// /dev/nvidiactl, /dev/nvidia-uvm...), sorted.
    public static func devices(_ configuration: Configuration) -> [String] {
        var out: [String] = []
        for prefix in (try? configuration.list("nvi_dev_list")) ?? [] where prefix.hasPrefix("/") {
            out += matching(prefix).map(\.path)
        }
        return Array(Set(out)).sorted()
    }

    // MARK: finding the host's files

    /// Host directories with the driver libraries: lib_dirs_list_nvidia, then the directories
    /// `ldconfig -p` names for this architecture, then LD_LIBRARY_PATH; real paths, no repeats.
    public func hostLibraryDirs() -> [String] {
        var dirs: [String] = []
        func add(_ d: String) {
            guard let real = Self.realPath(d), FileIO.isDirectory(real), !dirs.contains(real) else { return }
            dirs.append(real)
        }
        for d in (try? configuration.list("lib_dirs_list_nvidia")) ?? [] where hasMainLibrary(d) { add(d) }
        for d in ldconfigDirs() { add(d) }
        for d in (environment["LD_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
            where d.hasPrefix("/") && hasMainLibrary(d) { add(d) }
        return dirs
    }

    private func hasMainLibrary(_ dir: String) -> Bool {
        guard let names = try? FileIO.listDirectory(dir) else { return false }
        return names.contains { n in Self.mainLibraries.contains { n.hasPrefix($0) } }
    }

    /// The program `nvi_ldconfig` names ("ldconfig" looked up in /sbin, /usr/sbin and PATH), or
    /// nil when it is None or missing.
    func ldconfigProgram() -> String? {
        guard let v = configuration.string("nvi_ldconfig"), v.lowercased() != "none" else { return nil }
        if v.contains("/") { return access(v, X_OK) == 0 ? v : nil }
        let path = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in ["/sbin", "/usr/sbin"] + path where dir.hasPrefix("/") && access(dir + "/" + v, X_OK) == 0 {
            return dir + "/" + v
        }
        return nil
    }

    func ldconfigDirs() -> [String] {
        guard let prog = ldconfigProgram(), let r = Launcher.capture([prog, "-p"]), r.status == 0 else { return [] }
        return Self.parseLdconfig(r.output, architecture: HostInfo.ldconfigArchitecture)
    }

    /// Directories of the main NVIDIA libraries in `ldconfig -p` output, e.g.
    /// "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1". Lines for other
    /// architectures (the 32-bit libraries of a multilib host) are skipped: their names are the
    /// same and would overwrite the 64-bit ones.
    public static func parseLdconfig(_ text: String, architecture: String) -> [String] {
        var dirs: [String] = []
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard mainLibraries.contains(where: { line.hasPrefix($0) }),
                  let arrow = line.range(of: " => ") else { continue }
            let flags = line[..<arrow.lowerBound]
            if !architecture.isEmpty && !flags.contains(architecture) { continue }
            let path = String(line[arrow.upperBound...])
            guard path.hasPrefix("/") else { continue }
            let dir = FileIO.parent(of: path)
            if !dirs.contains(dir) { dirs.append(dir) }
        }
        return dirs
    }

    /// The files of `dir` whose names start with the nvi_lib_list prefixes (a prefix may name a
    /// subdirectory, as 'tls/libnvidia-tls.' does), as paths relative to `dir`.
    func libraries(in dir: String) -> [String] {
        var out: [String] = []
        for prefix in (try? configuration.list("nvi_lib_list")) ?? [] where !prefix.isEmpty && !prefix.hasPrefix("/") {
            for m in Self.matching(dir + "/" + prefix) {
                let rel = String(m.path.dropFirst(dir.count + 1))
                if !out.contains(rel) { out.append(rel) }
            }
        }
        return out
    }

    /// Entries whose path starts with `prefix` (glob prefix*), sorted.
    static func matching(_ prefix: String) -> [(path: String, name: String)] {
        let dir = FileIO.parent(of: prefix)
        let start = FileIO.basename(of: prefix)
        guard !prefix.hasSuffix("/"), let names = try? FileIO.listDirectory(dir) else { return [] }
        return names.filter { $0.hasPrefix(start) && $0 != "." && $0 != ".." }.sorted()
            .map { (dir == "/" ? "/" + $0 : dir + "/" + $0, $0) }
    }

    /// The directories the tools are looked for in: PATH, then /usr/bin (udocker's only place).
    func binaryDirs() -> [String] {
        var dirs: [String] = []
        for d in (environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
            where d.hasPrefix("/") && !dirs.contains(d) { dirs.append(d) }
        return dirs
    }

    // MARK: installing

    /// One file to put into the container.
    struct Item {
        enum Kind { case symlink(String), file }
        let source: String
        /// Absolute container path.
        let destination: String
        let kind: Kind
    }

    /// Works out what to copy: libraries into the container's library directory (symlinks kept when
    /// their target is copied too), tools into /usr/bin and configuration files into /etc (both with
    /// symlinks followed).
    func plan(root: String) throws -> (items: [Item], report: NvidiaReport) {
        var report = NvidiaReport()
        let hostDirs = hostLibraryDirs()
        guard !hostDirs.isEmpty else {
            let configured = ((try? configuration.list("lib_dirs_list_nvidia")) ?? []).joined(separator: ", ")
            throw RuntimeError.nvidiaFailed("host NVIDIA libraries not found (looked for libcuda.so and libnvidia-cfg.so in \(configured.isEmpty ? "no directories" : configured), the ldconfig cache and LD_LIBRARY_PATH)",
                                            "install the NVIDIA driver, or name its library directory in lib_dirs_list_nvidia in udocker.conf")
        }
        report.hostLibraryDirs = hostDirs
        let paths = ContainerPath(root: root, volumes: [])
        let candidates = ["/usr/lib/" + HostInfo.multiarchTriplet, "/usr/lib64", "/usr/lib"]
        guard let contLib = candidates.first(where: { paths.isDirectory($0) }) else {
            throw RuntimeError.nvidiaFailed("the container has none of \(candidates.joined(separator: ", ")) to put the libraries in",
                                            "use a glibc-based image (Debian, Ubuntu, RHEL and the like)")
        }
        report.containerLibraryDir = contLib

        var items: [Item] = []
        var taken = Set<String>()
        for dir in hostDirs {
            let rels = libraries(in: dir)
            let relSet = Set(rels)
            for rel in rels {
                let dest = contLib + "/" + rel
                if taken.contains(dest) { continue }   // a later directory's copy of the same name
                let src = dir + "/" + rel
                var st = stat()
                guard lstat(src, &st) == 0 else { continue }
                let kind: Item.Kind
                if (st.st_mode & S_IFMT) == S_IFLNK, let target = ContainerStore.readLink(src) {
                    // A link to a file copied alongside stays a link; any other is followed.
                    let sibling = (FileIO.parent(of: rel) == "." || !rel.contains("/")) ? target : FileIO.parent(of: rel) + "/" + target
                    if !target.contains("/") && relSet.contains(sibling) { kind = .symlink(target) }
                    else if Self.isRegularFile(src) { kind = .file }
                    else { continue }
                } else if (st.st_mode & S_IFMT) == S_IFREG {
                    kind = .file
                } else {
                    continue
                }
                taken.insert(dest)
                items.append(Item(source: src, destination: dest, kind: kind))
            }
        }
        let binDirs = binaryDirs()
        for name in (try? configuration.list("nvi_bin_list")) ?? [] where !name.isEmpty && !name.contains("/") {
            if let dir = binDirs.first(where: { Self.isRegularFile($0 + "/" + name) && access($0 + "/" + name, X_OK) == 0 }) {
                items.append(Item(source: dir + "/" + name, destination: "/usr/bin/" + name, kind: .file))
            } else {
                report.notFound.append(name)
            }
        }
        for rel in (try? configuration.list("nvi_etc_list")) ?? [] where !rel.isEmpty && !rel.hasPrefix("/") {
            guard !rel.split(separator: "/").contains("..") else { continue }
            if Self.isRegularFile("/etc/" + rel) {
                items.append(Item(source: "/etc/" + rel, destination: "/etc/" + rel, kind: .file))
            } else {
                report.notFound.append("/etc/" + rel)
            }
        }
        return (items, report)
    }

    /// Copies the driver files into the container `containerDir` and writes the marker. Without
    /// `force`, a container that already has any of the files is left unchanged.
    public func install(containerDir: String, force: Bool) throws -> NvidiaReport {
        try ContainerDirectoryCheck.check(containerDir)
        let root = containerDir + "/" + ContainerStore.rootDir
        var (items, report) = try plan(root: root)
        let paths = ContainerPath(root: root, volumes: [])
        if !force {
            let existing = items.filter { item in
                let parent = FileIO.parent(of: item.destination)
                guard let hostParent = paths.hostPath(parent) else { return false }
                var st = stat()
                return lstat(hostParent + "/" + FileIO.basename(of: item.destination), &st) == 0
            }.map(\.destination)
            if !existing.isEmpty {
                let shown = existing.prefix(3).joined(separator: ", ") + (existing.count > 3 ? " and \(existing.count - 3) more" : "")
                throw RuntimeError.nvidiaFailed("nvidia installation already exists in the container (\(shown))",
                                                "use 'udocker setup --nvidia --force' to overwrite")
            }
        }
        let copier = FileCopier()
        for item in items {
            let hostParent = try Self.containerDirectory(FileIO.parent(of: item.destination), root: root,
                                                         modeFrom: FileIO.parent(of: item.source))
            try Self.place(item, in: hostParent, copier: copier)
            report.added.append(item.destination)
        }
        let list = report.added.map { $0 + "\n" }.joined()
        do { try FileIO.writeAtomically(containerDir + "/" + Self.markerFile, Array(list.utf8)) } catch {
            throw RuntimeError.nvidiaFailed("cannot record the NVIDIA files in \(containerDir)/\(Self.markerFile) (\(error))",
                                            "check the permissions of the container directory")
        }
        return report
    }

    /// The host path of container directory `path`, made (component by component, symlinks
    /// resolved inside the container) when missing.
    static func containerDirectory(_ path: String, root: String, modeFrom hostDir: String) throws -> String {
        let paths = ContainerPath(root: root, volumes: [])
        var done = ""
        for c in path.split(separator: "/") {
            let next = done + "/" + c
            if let h = paths.hostPath(next) {
                guard FileIO.isDirectory(h) else {
                    throw RuntimeError.nvidiaFailed("\(next) in the container is not a directory", "remove it, or give the container another image")
                }
            } else {
                guard let parent = paths.hostPath(done.isEmpty ? "/" : done) else {
                    throw RuntimeError.nvidiaFailed("cannot reach \(done) in the container", "check the container's symlinks")
                }
                var st = stat()
                let mode: mode_t = stat(hostDir, &st) == 0 ? (st.st_mode & 0o7777) | 0o700 : 0o755
                let made = (parent == "/" ? "" : parent) + "/" + c
                if mkdir(made, mode) != 0 && errno != EEXIST {
                    throw RuntimeError.io("mkdir", made, errno)
                }
            }
            done = next
        }
        guard let h = paths.hostPath(path.isEmpty ? "/" : path) else {
            throw RuntimeError.nvidiaFailed("cannot reach \(path) in the container", "check the container's symlinks")
        }
        return h
    }

    /// Writes the item as a new file beside its destination and renames it into place, so that a
    /// file linked to the store (or a symlink planted in the container) is replaced, never written.
    static func place(_ item: Item, in hostParent: String, copier: FileCopier) throws {
        let name = FileIO.basename(of: item.destination)
        let final = hostParent + "/" + name
        let temp = hostParent + "/.udocker-nvidia-\(getpid())-" + name
        unlink(temp)
        switch item.kind {
        case .symlink(let target):
            if symlink(target, temp) != 0 { throw writeError("symlink", temp, errno) }
        case .file:
            let src = open(item.source, O_RDONLY | O_CLOEXEC)
            guard src >= 0 else { throw RuntimeError.io("open", item.source, errno) }
            defer { close(src) }
            var st = stat()
            guard fstat(src, &st) == 0 else { throw RuntimeError.io("stat", item.source, errno) }
            var mode = (st.st_mode & 0o777) | 0o600
            if st.st_mode & 0o111 != 0 { mode |= 0o100 }
            let dst = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
            guard dst >= 0 else { throw writeError("create", temp, errno) }
            do {
                try copier.copy(from: src, to: dst, size: UInt64(st.st_size), path: item.source)
                _ = fchmod(dst, mode)
                close(dst)
            } catch {
                close(dst)
                unlink(temp)
                throw error
            }
        }
        if rename(temp, final) != 0 {
            let e = errno
            unlink(temp)
            throw writeError("rename", final, e)
        }
    }

    private static func writeError(_ op: String, _ path: String, _ err: Int32) -> RuntimeError {
        if err == EACCES || err == EPERM || err == EROFS {
            return .nvidiaFailed("cannot \(op) \(path): \(String(cString: strerror(err)))",
                                 "make the container's directories writable with 'udocker setup --fixperm'")
        }
        return .io(op, path, err)
    }

    static func isRegularFile(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}

extension HostInfo {
    /// The architecture word `ldconfig -p` prints for this host's libraries ("libc6,x86-64").
    public static var ldconfigArchitecture: String {
        #if arch(x86_64)
        return "x86-64"
        #elseif arch(arm64)
        return "AArch64"
        #else
        return ""
        #endif
    }
}
