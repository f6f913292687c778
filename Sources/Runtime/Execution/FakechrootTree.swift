// What the Fakechroot modes need to know about a container tree (real path, loader, library
// directories, F2's loader copy), cached in the container's directory so a run does not walk the tree.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct FakechrootTree: Sendable {
    /// The real path of ROOT (what the kernel reports for getcwd, so it is FAKECHROOT_BASE).
    public let root: String
    /// Where cached answers and generated files go: the container's directory, or the run
    /// directory for --location.
    public let stateDir: String
    public let configuration: Configuration

    /// udocker's file naming the loader by its container path.
    public static let loaderFile = "ld.so.path"
    /// Library directories (container paths, one a line).
    public static let libraryDirsFile = "fakechroot.libdirs"

    public init(root: String, stateDir: String, configuration: Configuration) throws {
        guard let real = Self.realPath(root) else {
            throw RuntimeError.badContainer(path: root, reason: "its ROOT directory cannot be resolved (\(String(cString: strerror(errno))))")
        }
        self.root = real
        self.stateDir = stateDir
        self.configuration = configuration
    }

    public static func realPath(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// The host path a container path reaches inside ROOT (symlinks resolved against ROOT, volumes
    /// ignored), or nil when it does not exist.
    public func inside(_ containerPath: String) -> String? {
        guard let h = ContainerPath(root: root, volumes: []).hostPath(containerPath) else { return nil }
        return h == root || h.hasPrefix(root + "/") ? h : nil
    }

    /// The container path of a host path inside ROOT.
    public func containerPath(ofHost host: String) -> String? {
        if host == root { return "/" }
        return host.hasPrefix(root + "/") ? String(host.dropFirst(root.count)) : nil
    }

    /// Removes the files the Fakechroot modes regenerate when missing (caches, F2's loader, the
    /// exit programs); returns their paths.
    public static func removeGenerated(stateDir: String) -> [String] {
        let names = (try? FileIO.listDirectory(stateDir)) ?? []
        var removed: [String] = []
        for n in names.sorted() where n == loaderFile || n == libraryDirsFile || n.hasPrefix("ld.so.f2-") || n.hasPrefix("fakechroot-exit") {
            if unlink(stateDir + "/" + n) == 0 { removed.append(stateDir + "/" + n) }
        }
        return removed
    }

    // MARK: loader

    /// The container path of the loader most programs use: the program interpreter of /bin/sh,
    /// else of the first dynamic program in the usual directories. Cached in ld.so.path.
    public func loader(refresh: Bool = false) -> String? {
        let cache = stateDir + "/" + Self.loaderFile
        if !refresh, let b = try? FileIO.readFile(cache) {
            let p = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if p.hasPrefix("/"), let h = inside(p), ElfFile.read(h) != nil { return p }
        }
        guard let found = guessLoader() else { return nil }
        try? FileIO.mkdirs(stateDir, mode: 0o700)
        try? FileIO.writeAtomically(cache, Array(found.utf8), mode: 0o644)
        return found
    }

    /// The loader as `loader()` finds it, without the cache.
    func guessLoader() -> String? {
        // A file patched for F3/F4 names the loader by its host path inside ROOT.
        func usable(_ interpreter: String?) -> String? {
            guard let i = interpreter else { return nil }
            if let c = containerPath(ofHost: i), inside(c) != nil { return c }
            return inside(i) != nil ? i : nil
        }
        for sh in ["/bin/sh", "/usr/bin/sh", "/bin/bash"] {
            if let h = inside(sh), let i = usable(ElfFile.read(h)?.interpreter) { return i }
        }
        for dir in ["/bin", "/usr/bin", "/sbin", "/usr/sbin"] {
            guard let d = inside(dir), let names = try? FileIO.listDirectory(d) else { continue }
            for n in names.sorted() {
                if let i = usable(ElfFile.read(d + "/" + n)?.interpreter) { return i }
            }
        }
        return nil
    }

    /// The loader's real file inside ROOT (never the host's, even when the container's
    /// /lib64/ld-linux-x86-64.so.2 is an absolute symlink).
    public func hostLoader(_ containerPath: String) -> String? {
        guard let h = inside(containerPath), ElfFile.read(h) != nil else { return nil }
        return h
    }

    /// Whether a loader accepts --argv0 (glibc 2.33 and later), read from its own text.
    public static func loaderTakesArgv0(_ hostLoader: String) -> Bool {
        guard let bytes = try? FileIO.readFile(hostLoader) else { return false }
        return contains(bytes, Array("--argv0".utf8))
    }

    // MARK: library directories

    /// The container's library directories as host paths: those of /etc/ld.so.conf, the
    /// essential ones (lib_dirs_list_essential), then every other directory holding lib*.so*,
    /// then lib_dirs_list_append. The scan is cached in the container's directory.
    public func libraryDirs(refresh: Bool = false) -> [String] {
        let cache = stateDir + "/" + Self.libraryDirsFile
        var containerDirs: [String] = []
        if !refresh, let b = try? FileIO.readFile(cache) {
            containerDirs = String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix("/") }
        }
        if containerDirs.isEmpty {
            containerDirs = ldSoConfDirs()
            containerDirs += (try? configuration.list("lib_dirs_list_essential")) ?? []
            containerDirs += scanLibraryDirs()
            try? FileIO.mkdirs(stateDir, mode: 0o700)
            try? FileIO.writeAtomically(cache, Array((containerDirs.joined(separator: "\n") + "\n").utf8), mode: 0o644)
        }
        var out: [String] = []
        var seen = Set<String>()
        for d in containerDirs {
            guard let h = inside(d), FileIO.isDirectory(h), !seen.contains(h) else { continue }
            seen.insert(h)
            out.append(h)
        }
        for a in (try? configuration.list("lib_dirs_list_append")) ?? [] where !seen.contains(a) {
            out.append(a)
        }
        return out
    }

    /// Directories named by /etc/ld.so.conf and the files it includes.
    func ldSoConfDirs() -> [String] {
        var out: [String] = []
        var visited = Set<String>()
        func read(_ containerPath: String, depth: Int) {
            guard depth < 8, let h = inside(containerPath), !visited.contains(h), let b = try? FileIO.readFile(h) else { return }
            visited.insert(h)
            for raw in String(decoding: b, as: UTF8.self).split(separator: "\n") {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if line.isEmpty { continue }
                if line.hasPrefix("include") {
                    for pattern in line.dropFirst(7).split(separator: " ").map(String.init) where !pattern.isEmpty {
                        let full = pattern.hasPrefix("/") ? pattern : FileIO.parent(of: containerPath) + "/" + pattern
                        for f in glob(full) { read(f, depth: depth + 1) }
                    }
                } else if line.hasPrefix("/") {
                    out.append(line.split(separator: "=").first.map(String.init) ?? line)
                }
            }
        }
        read("/etc/ld.so.conf", depth: 0)
        return out
    }

    /// Container paths matching `pattern` whose last component may hold wildcards.
    private func glob(_ pattern: String) -> [String] {
        let dir = FileIO.parent(of: pattern), name = FileIO.basename(of: pattern)
        guard let h = inside(dir), let names = try? FileIO.listDirectory(h) else { return [] }
        return names.filter { fnmatch(name, $0, 0) == 0 }.sorted().map { (dir == "/" ? "" : dir) + "/" + $0 }
    }

    /// Container directories holding a file named like a shared library (lib*.so, lib*.so.N…).
    func scanLibraryDirs() -> [String] {
        var out: [String] = []
        func walk(_ host: String, depth: Int) {
            guard depth < 32, let names = try? FileIO.listDirectory(host) else { return }
            var hasLibrary = false
            for n in names.sorted() {
                let p = host + "/" + n
                var st = stat()
                guard lstat(p, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR:
                    if depth == 0 && ["proc", "sys", "dev"].contains(n) { continue }
                    walk(p, depth: depth + 1)
                case S_IFREG, S_IFLNK:
                    if !hasLibrary && Self.isLibraryName(n) { hasLibrary = true }
                default:
                    continue
                }
            }
            if hasLibrary, let c = containerPath(ofHost: host) { out.insert(c, at: 0) }
        }
        walk(root, depth: 0)
        return out.sorted()
    }

    /// udocker's pattern for shared libraries: lib<something>.so optionally followed by .N groups.
    static func isLibraryName(_ name: String) -> Bool {
        guard name.hasPrefix("lib"), let r = name.range(of: ".so") else { return false }
        let stem = name[name.index(name.startIndex, offsetBy: 3)..<r.lowerBound]
        guard !stem.isEmpty, !stem.contains(" ") else { return false }
        let rest = name[r.upperBound...]
        if rest.isEmpty { return true }
        guard rest.hasPrefix(".") else { return false }
        return rest.dropFirst().split(separator: ".", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    // MARK: F2 loader

    /// F2's loader: a copy of the container's loader (in the container's directory, never inside
    /// ROOT) whose built-in /etc/ld.so.cache, /etc/ld.so.preload and default library directories
    /// name paths that do not exist, so only the container's directories are searched.
    /// Named by the original's digest, so it is made once and shared by concurrent runs.
    public func f2Loader(from hostLoader: String) throws -> String {
        // The name is remembered with the loader's identity (inode, size, times; a changed file has a
        // new ctime): reading and hashing its 200 KB cost every F2 run about 2.5 ms.
        let memo = stateDir + "/ld.so.f2-identity"
        var st = stat()
        let identity = stat(hostLoader, &st) == 0
            ? "\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)" : nil
        if let identity, let b = try? FileIO.readFile(memo) {
            let lines = String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init)
            if lines.count == 2, lines[0] == identity, lines[1].hasPrefix("ld.so.f2-"), FileIO.exists(stateDir + "/" + lines[1]) {
                return stateDir + "/" + lines[1]
            }
        }
        let original = try ContainerStore.io { try FileIO.readFile(hostLoader) }
        let digest = try ContainerStore.io { try SHA256Hasher.digest(of: original) }
        let name = "ld.so.f2-" + String(digest.hex.prefix(16))
        let path = stateDir + "/" + name
        if !FileIO.exists(path) {
            guard let patched = Self.protectLoader(original) else {
                throw RuntimeError.modeUnusable(mode: "F2", why: "the container's loader \(hostLoader) has no built-in library directories to change (it is not a glibc ld.so)", usable: ["F1", "F3", "P1"])
            }
            try ContainerStore.io {
                try FileIO.mkdirs(stateDir, mode: 0o700)
                try FileIO.writeAtomically(path, patched, mode: 0o755)
            }
        }
        if let identity { try? FileIO.writeAtomically(memo, Array((identity + "\n" + name + "\n").utf8), mode: 0o600) }
        return path
    }

    /// The loader's bytes with the first character after the leading '/' of /etc/ld.so.cache,
    /// /etc/ld.so.preload and of every default library directory ("/lib/…/", "/usr/lib/…/")
    /// replaced by \u{1}: same lengths, absolute paths still (ld.so asserts that), but absent.
    /// nil when none was found.
    static func protectLoader(_ input: [UInt8]) -> [UInt8]? {
        var bytes = input
        var changed = 0
        let patterns: [(prefix: [UInt8], directoriesOnly: Bool)] = [
            (Array("\u{0}/etc/ld.so".utf8), false), (Array("\u{0}/lib".utf8), true), (Array("\u{0}/usr".utf8), true),
        ]
        for (prefix, directoriesOnly) in patterns {
            var i = 0
            while let at = find(bytes, prefix, from: i) {
                let start = at + 1
                var end = start
                while end < bytes.count && bytes[end] != 0 { end += 1 }
                if !directoriesOnly || (end > start && bytes[end - 1] == UInt8(ascii: "/")) {
                    bytes[start + 1] = 1
                    changed += 1
                }
                i = start
            }
        }
        return changed > 0 ? bytes : nil
    }

    static func find(_ hay: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty else { return nil }
        return ByteSearch.find(hay, needle, from: from)
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool { find(hay, needle, from: 0) != nil }
}
