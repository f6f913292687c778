// `udocker install`: puts a tools bundle (scripts/build-tools-bundle.sh: bin/, lib/, BUNDLE.json)
// into a repository's bin/ and lib/, treating the archive as hostile until every file is verified.
import CArchive
import CAS
import CShim
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

/// BUNDLE.json, the manifest at the top of a tools bundle; installed as lib/BUNDLE.json.
public struct ToolsBundleManifest: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        /// "bin/NAME" or "lib/NAME".
        public let path: String
        /// Regular files: their sha256 (64 lowercase hex) and size.
        public let sha256: String?
        public let size: Int64?
        /// Symlinks: their target, relative, inside bin/ or lib/.
        public let symlink: String?
        /// The Debian package and version the file came from (informative).
        public let package: String?
        public let version: String?
    }

    public static let fileName = "BUNDLE.json"
    public static let currentFormat = 1

    public let format: Int
    /// The architecture the programs are built for, as `HostInfo.architecture` names it.
    public let arch: String
    public let builtOn: String?
    public let entries: [Entry]
    /// The manifest as it was read, written unchanged to lib/BUNDLE.json.
    public let raw: [UInt8]

    public static func == (a: ToolsBundleManifest, b: ToolsBundleManifest) -> Bool {
        a.format == b.format && a.arch == b.arch && a.entries == b.entries
    }

    private struct Probe: Decodable { let format: Int? }
    private struct RawFile: Decodable {
        let path: String
        let sha256: String?
        let size: Int64?
        let symlink: String?
        let package: String?
        let version: String?
    }
    private struct RawManifest: Decodable {
        let format: Int
        let arch: String
        let built_on: String?
        let files: [RawFile]
    }

    /// Parses and checks a manifest: known format, valid names, one kind per entry, no duplicates.
    public static func parse(_ bytes: [UInt8], source: String) throws -> ToolsBundleManifest {
        func bad(_ why: String) -> RuntimeError { .badToolsBundle(source, why) }
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)), let format = probe.format else {
            throw bad("its BUNDLE.json is not a JSON object with a \"format\" number")
        }
        guard format == currentFormat else {
            throw bad("its BUNDLE.json has format \(format), this udocker knows format \(currentFormat) only (a newer udocker made it?)")
        }
        let m: RawManifest
        do { m = try JSONDecoder().decode(RawManifest.self, from: Data(bytes)) } catch {
            throw bad("its BUNDLE.json does not have the fields of format 1 (arch, files with path and sha256 and size, or symlink)")
        }
        var seen = Set<String>()
        var entries: [Entry] = []
        for f in m.files {
            guard let (dir, _) = ToolsInstaller.splitEntryPath(f.path) else {
                throw bad("its BUNDLE.json lists '\(f.path)', which is not bin/NAME or lib/NAME")
            }
            guard seen.insert(f.path).inserted else { throw bad("its BUNDLE.json lists '\(f.path)' twice") }
            switch (f.sha256, f.size, f.symlink) {
            case (let sum?, let size?, nil):
                guard (try? Digest(parsing: sum, allowBare: true)) != nil, !sum.hasPrefix("sha256:"), size >= 0 else {
                    throw bad("its BUNDLE.json gives '\(f.path)' an invalid sha256 or size")
                }
            case (nil, nil, let target?):
                guard ToolsInstaller.symlinkDestination(target, from: dir) != nil else {
                    throw bad("its BUNDLE.json lists the symlink '\(f.path)' to '\(target)', which is not a file name beside it")
                }
            default:
                throw bad("its BUNDLE.json entry '\(f.path)' must have either sha256 and size (a file) or symlink (a link)")
            }
            entries.append(Entry(path: f.path, sha256: f.sha256, size: f.size, symlink: f.symlink,
                                 package: f.package, version: f.version))
        }
        if entries.isEmpty { throw bad("its BUNDLE.json lists no files") }
        return ToolsBundleManifest(format: m.format, arch: m.arch, builtOn: m.built_on, entries: entries, raw: bytes)
    }
}

/// One engine tool and where `EngineLocator` finds it, for `udocker install` to report.
public struct ToolStatus: Sendable {
    /// As users know it: proot, runc, crun, patchelf, libfakechroot, apptainer/singularity.
    public let name: String
    public let located: LocatedTool?
    /// Why the tool cannot be used (a setting naming a missing file), when it cannot.
    public let problem: String?
}

public struct ToolsInstaller: Sendable {
    public let bindir: String
    public let libdir: String
    /// Where the staging directory is made (the repository's top directory).
    public let workdir: String

    /// What `install` did.
    public enum Outcome: Sendable, Equatable {
        /// The bundle was verified and installed; `removed` are files of the previous bundle it
        /// no longer has.
        case installed(removed: [String])
        /// The same bundle was already installed and intact; nothing was changed.
        case alreadyInstalled
    }

    /// The largest download or archive content accepted (the Debian bundle is about 16 MiB).
    static let maxTotalBytes: Int64 = 1 << 30
    static let maxManifestBytes: Int64 = 1 << 20
    static let maxEntries = 4096
    static let stagingPrefix = ".tmp.tools."
    static let lockName = ".install.lock"

    public init(bindir: String, libdir: String, workdir: String) {
        self.bindir = bindir
        self.libdir = libdir
        self.workdir = workdir
    }

    public init(repository: Repository) {
        self.init(bindir: repository.bindir, libdir: repository.libdir, workdir: repository.topdir)
    }

    public var manifestPath: String { libdir + "/" + ToolsBundleManifest.fileName }

    // MARK: sources

    /// The local path a source names (a path, or a file:// URL), or nil for any other URL.
    public static func localPath(_ source: String) -> String? {
        if source.hasPrefix("file://") {
            var rest = String(source.dropFirst("file://".count))
            if rest.hasPrefix("localhost/") { rest.removeFirst("localhost".count) }
            guard rest.hasPrefix("/") else { return nil }
            return rest.removingPercentEncoding ?? rest
        }
        return source.contains("://") ? nil : source
    }

    /// The first entry of the `tarball` setting (UDOCKER_TARBALL; a space-separated list, as in
    /// udocker) that names a local file or file:// URL. udocker's own http(s) tarballs are another
    /// format and are never downloaded implicitly.
    public static func configuredSource(_ configuration: Configuration) -> String? {
        configuration.tarball.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            .map(String.init).first { localPath($0) != nil }
    }

    // MARK: install

    /// Installs the bundle at `source` (a path, file://, http:// or https:// URL). Without `force`,
    /// a bundle whose manifest equals the installed one, with every installed file intact, is left
    /// alone. Nothing becomes visible in bin/ or lib/ before every file has been verified.
    public func install(from source: String, force: Bool, httpOptions: HTTPOptions = HTTPOptions()) throws -> Outcome {
        try ensureDirectories()
        let lock = try BlobContent.cas { try FileLock(path: libdir + "/" + Self.lockName) }
        defer { lock.unlock() }
        sweepStaging()
        let staging = try makeStaging()
        defer { try? FileIO.removeTree(staging) }

        let fd = try openSource(source, staging: staging, httpOptions: httpOptions)
        defer { _ = close(fd) }
        let bundle = StagedBundle(source: source, staging: staging)
        try bundle.read(fd: fd)
        let manifest = try bundle.verify()

        if !force, let installed = installedManifest(), installed == manifest, installedFilesIntact(manifest) {
            return .alreadyInstalled
        }
        _ = unlink(adaptedPath)
        let removed = try moveIntoPlace(bundle, manifest)
        if let release = Release.directory { try adaptToRelease(manifest, release: release) }
        return .installed(removed: removed)
    }

    /// The installed bundle's manifest, or nil when none is installed (or it is unreadable).
    public func installedManifest() -> ToolsBundleManifest? {
        var st = stat()
        guard lstat(manifestPath, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= Self.maxManifestBytes,
              let bytes = try? FileIO.readFile(manifestPath) else { return nil }
        return try? ToolsBundleManifest.parse(bytes, source: manifestPath)
    }

    /// Removes everything in bin/ and lib/ (udocker's `install --purge`); returns what was removed.
    public func purge() throws -> [String] {
        try ensureDirectories()
        let lock = try BlobContent.cas { try FileLock(path: libdir + "/" + Self.lockName) }
        defer { lock.unlock() }
        var removed: [String] = []
        for dir in [bindir, libdir] {
            for name in try BlobContent.cas({ try FileIO.listDirectory(dir) }).sorted() where !(dir == libdir && name == Self.lockName) {
                try BlobContent.cas { try FileIO.removeTree(dir + "/" + name) }
                removed.append(dir + "/" + name)
            }
        }
        return removed
    }

    /// Where `locator` finds each engine tool, in the order users read them.
    public static func toolStatus(_ locator: EngineLocator) -> [ToolStatus] {
        let tools: [(String, EngineTool)] = [("proot", .proot), ("runc", .runc), ("crun", .crun), ("patchelf", .patchelf),
                                             ("libfakechroot", .fakechroot), ("apptainer/singularity", .singularity)]
        return tools.map { name, tool in
            do { return ToolStatus(name: name, located: try locator.find(tool), problem: nil) } catch {
                return ToolStatus(name: name, located: nil, problem: String(describing: error))
            }
        }
    }

    // MARK: steps

    private func ensureDirectories() throws {
        for d in [workdir, bindir, libdir] { try BlobContent.cas { try FileIO.mkdirs(d) } }
    }

    /// A fresh directory in the repository, named so a later install can tell whether its owner
    /// died and remove it.
    private func makeStaging() throws -> String {
        let name = "\(Self.stagingPrefix)\(getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 36))@\(ProcessIdentity.host)"
        let path = workdir + "/" + name
        if mkdir(path, 0o700) != 0 { throw RuntimeError.io("mkdir", path, errno) }
        for sub in ["bin", "lib"] where mkdir(path + "/" + sub, 0o700) != 0 {
            throw RuntimeError.io("mkdir", path + "/" + sub, errno)
        }
        return path
    }

    /// Removes staging directories left by installs on this host whose process is gone.
    private func sweepStaging() {
        guard let names = try? FileIO.listDirectory(workdir) else { return }
        for name in names where name.hasPrefix(Self.stagingPrefix) {
            guard let at = name.lastIndex(of: "@"), String(name[name.index(after: at)...]) == ProcessIdentity.host else { continue }
            let parts = name[name.index(name.startIndex, offsetBy: Self.stagingPrefix.count)..<at].split(separator: ".")
            guard let first = parts.first, let pid = Int32(first), pid > 0, ud_pid_alive(pid) == 0 else { continue }
            try? FileIO.removeTree(workdir + "/" + name)
        }
    }

    /// An open descriptor on the bundle: the local file itself, or a download into the staging
    /// directory.
    private func openSource(_ source: String, staging: String, httpOptions: HTTPOptions) throws -> Int32 {
        if let path = Self.localPath(source) {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.io("open", path, errno) }
            var st = stat()
            if fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG {
                _ = close(fd)
                throw RuntimeError.badToolsBundle(source, "it is not a regular file")
            }
            return fd
        }
        let lower = source.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
            throw RuntimeError.badToolsBundle(source, "only local files and file://, http:// and https:// URLs can be installed")
        }
        let path = staging + "/download"
        let sink = try DownloadFile(path: path, limit: UInt64(Self.maxTotalBytes))
        let response = try HTTPClient(options: httpOptions).send(HTTPRequest(url: source), sink: sink)
        guard response.status == 200 || response.status == 206 else {
            throw RuntimeError.badToolsBundle(source, "the server answered HTTP \(response.status)")
        }
        sink.close()
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw RuntimeError.io("open", path, errno) }
        return fd
    }

    /// Whether every file the manifest lists is in bin/ and lib/ as listed.
    func installedFilesIntact(_ manifest: ToolsBundleManifest) -> Bool {
        let adapted = adaptedDigests()
        // From a release, tools installed by a udocker that did not adapt them are installed again.
        if Release.directory != nil, manifest.entries.contains(where: { $0.path == "bin/patchelf" }), adapted.isEmpty { return false }
        return manifest.entries.allSatisfy { e in
            let dest = destination(e.path)
            if let target = e.symlink { return ContainerStore.readLink(dest) == target }
            let fd = Glibc.open(dest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            if fd < 0 { return false }
            defer { _ = close(fd) }
            guard let (digest, size) = try? SHA256Hasher.hash(fd: fd, path: dest) else { return false }
            return (digest.hex == e.sha256 && Int64(size) == e.size) || digest.hex == adapted[e.path]
        }
    }

    /// The repository path of a bundle path ("bin/proot" -> BINDIR/proot).
    func destination(_ path: String) -> String {
        guard let (dir, name) = Self.splitEntryPath(path) else { return "" }
        return (dir == "bin" ? bindir : libdir) + "/" + name
    }

    /// Moves the verified files into bin/ and lib/. The installed manifest goes first and comes back
    /// last, so an interrupted install is never taken for a complete one.
    private func moveIntoPlace(_ bundle: StagedBundle, _ manifest: ToolsBundleManifest) throws -> [String] {
        for e in manifest.entries {
            var st = stat()
            let dest = destination(e.path)
            if lstat(dest, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                throw RuntimeError.toolsInstallFailed("cannot install \(e.path): \(dest) is a directory",
                                                      "remove it, or run 'udocker install --purge' to empty bin/ and lib/ first")
            }
        }
        let previous = installedManifest()
        if unlink(manifestPath) != 0 && errno != ENOENT { throw RuntimeError.io("unlink", manifestPath, errno) }
        for e in manifest.entries {
            try move(bundle.staging + "/" + e.path, to: destination(e.path), symlink: e.symlink)
        }
        var removed: [String] = []
        let current = Set(manifest.entries.map(\.path))
        for e in previous?.entries ?? [] where !current.contains(e.path) {
            let dest = destination(e.path)
            var st = stat()
            guard lstat(dest, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG || (st.st_mode & S_IFMT) == S_IFLNK else { continue }
            if unlink(dest) == 0 { removed.append(dest) }
        }
        for d in [bindir, libdir] { try BlobContent.cas { try FileIO.fsyncDirectory(d) } }
        try BlobContent.cas { try FileIO.writeAtomically(manifestPath, manifest.raw, mode: 0o644) }
        return removed
    }

    /// rename(2) into place; across filesystems (bin/ or lib/ relocated with UDOCKER_BIN/LIB), a
    /// copy beside the destination renamed over it.
    private func move(_ staged: String, to dest: String, symlink: String?) throws {
        if rename(staged, dest) == 0 { return }
        guard errno == EXDEV else { throw RuntimeError.io("rename", dest, errno) }
        let tmp = FileIO.parent(of: dest) + "/\(Self.stagingPrefix)\(getpid()).\(FileIO.basename(of: dest))"
        _ = unlink(tmp)
        if let target = symlink {
            if Glibc.symlink(target, tmp) != 0 { throw RuntimeError.io("symlink", tmp, errno) }
        } else {
            do { try copyFile(staged, tmp) } catch {
                _ = unlink(tmp)
                throw error
            }
        }
        if rename(tmp, dest) != 0 {
            let e = errno
            _ = unlink(tmp)
            throw RuntimeError.io("rename", dest, e)
        }
    }

    func copyFile(_ from: String, _ to: String) throws {
        let src = Glibc.open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if src < 0 { throw RuntimeError.io("open", from, errno) }
        defer { _ = close(src) }
        var st = stat()
        if fstat(src, &st) != 0 { throw RuntimeError.io("stat", from, errno) }
        let dst = Glibc.open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if dst < 0 { throw RuntimeError.io("open", to, errno) }
        defer { _ = close(dst) }
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buf.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw RuntimeError.io("read", from, errno)
            }
            if n == 0 { break }
            try BlobContent.cas { try buf.withUnsafeBytes { try FileIO.writeAll(dst, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: to) } }
        }
        if fchmod(dst, st.st_mode & 0o777) != 0 { throw RuntimeError.io("chmod", to, errno) }
        try BlobContent.cas { try FileIO.fsync(dst, path: to) }
    }

    // MARK: names

    /// ("bin"|"lib", NAME) for a path of exactly that form: NAME one component, not starting with
    /// "." (the names this installer uses itself), no control characters, not lib/BUNDLE.json.
    static func splitEntryPath(_ path: String) -> (String, String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "bin" || parts[0] == "lib" else { return nil }
        let name = parts[1]
        guard !name.isEmpty, name.utf8.count <= 255, !name.hasPrefix("."),
              !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }),
              !(parts[0] == "lib" && name == ToolsBundleManifest.fileName) else { return nil }
        return (String(parts[0]), String(name))
    }

    /// The bundle path ("bin/x" or "lib/x") a symlink in `dir` with `target` points to, or nil
    /// unless the target is a plain name beside the link: bin/ and lib/ may be relocated
    /// (UDOCKER_BIN, UDOCKER_LIB), so even "../lib/x" could lead out of the repository.
    static func symlinkDestination(_ target: String, from dir: String) -> String? {
        let path = dir + "/" + target
        return splitEntryPath(path) != nil ? path : nil
    }
}

/// A bundle read into the staging directory: every regular file hashed while written, symlinks
/// created only after their targets were checked; nothing outside staging/bin and staging/lib.
final class StagedBundle {
    enum Item {
        case file(sha256: String, size: Int64)
        case symlink(String)
    }

    let source: String
    let staging: String
    private(set) var items: [String: Item] = [:]
    private(set) var manifestBytes: [UInt8]?
    private var total: Int64 = 0

    init(source: String, staging: String) {
        self.source = source
        self.staging = staging
    }

    private func bad(_ why: String) -> RuntimeError { .badToolsBundle(source, why) }

    /// Reads the archive (tar, plain or compressed with gzip, zstd, xz or bzip2), refusing the
    /// whole bundle at the first entry that is not a plain file or symlink under bin/ or lib/.
    func read(fd: Int32) throws {
        try TarEntries.read(fd: fd, source: source) { tar, entry, count in
            if count > ToolsInstaller.maxEntries { throw bad("it has more than \(ToolsInstaller.maxEntries) entries") }
            let raw = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let path = try canonical(raw)
            let type = mode_t(archive_entry_filetype(entry))
            if archive_entry_hardlink(entry) != nil {
                throw bad("entry '\(raw)' is a hard link; a bundle holds only files and symlinks")
            }
            if path.isEmpty || path == "bin" || path == "lib" {
                guard type == S_IFDIR else { throw bad("entry '\(raw)' must be a directory") }
                return
            }
            if path == ToolsBundleManifest.fileName {
                guard type == S_IFREG, manifestBytes == nil else { throw bad("entry '\(raw)' must be one regular file") }
                let size = archive_entry_size(entry)
                guard size <= ToolsInstaller.maxManifestBytes else { throw bad("its BUNDLE.json is \(size) bytes, too big") }
                var bytes: [UInt8] = []
                try tar.pump(raw) { bytes.append(contentsOf: $0) }
                manifestBytes = bytes
                return
            }
            guard let (dir, _) = ToolsInstaller.splitEntryPath(path) else {
                throw bad("entry '\(raw)' is not bin/NAME or lib/NAME (a bundle has no other files or subdirectories)")
            }
            guard items[path] == nil else { throw bad("entry '\(raw)' appears twice") }
            switch type {
            case S_IFREG:
                items[path] = try writeFile(tar, raw: raw, path: path, executable: dir == "bin")
            case S_IFLNK:
                let target = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
                guard ToolsInstaller.symlinkDestination(target, from: dir) != nil else {
                    throw bad("entry '\(raw)' is a symlink to '\(target)', which is not a file name beside it (a bundle's symlinks stay in their directory)")
                }
                items[path] = .symlink(target)
            default:
                throw bad("entry '\(raw)' is not a regular file or symlink")
            }
        }
    }

    /// The entry's path without "./" and empty components; refuses absolute paths and "..".
    private func canonical(_ raw: String) throws -> String {
        if raw.hasPrefix("/") { throw bad("entry '\(raw)' has an absolute path") }
        var parts: [Substring] = []
        for c in raw.split(separator: "/", omittingEmptySubsequences: true) where c != "." {
            if c == ".." { throw bad("entry '\(raw)' contains '..'") }
            parts.append(c)
        }
        return parts.joined(separator: "/")
    }

    private func writeFile(_ tar: TarEntries, raw: String, path: String, executable: Bool) throws -> Item {
        let dest = staging + "/" + path
        let fd = Glibc.open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw RuntimeError.io("create", dest, errno) }
        defer { _ = close(fd) }
        let hasher = try BlobContent.cas { try SHA256Hasher() }
        var size: Int64 = 0
        try tar.pump(raw) { chunk in
            size += Int64(chunk.count)
            total += Int64(chunk.count)
            if total > ToolsInstaller.maxTotalBytes {
                throw bad("its files are more than \(ToolsInstaller.maxTotalBytes >> 20) MiB together")
            }
            hasher.update(chunk)
            try BlobContent.cas { try FileIO.writeAll(fd, chunk, path: dest) }
        }
        // The final modes, whatever the archive says: programs 0755, libraries 0644.
        if fchmod(fd, executable ? 0o755 : 0o644) != 0 { throw RuntimeError.io("chmod", dest, errno) }
        try BlobContent.cas { try FileIO.fsync(fd, path: dest) }
        return .file(sha256: hasher.finish().hex, size: size)
    }

    /// Checks what was read against BUNDLE.json: the same entries, each file's sha256 and size,
    /// each symlink's target (which must be a file of the bundle), and the host's architecture.
    /// Creates the symlinks in staging once they are known to be safe.
    func verify() throws -> ToolsBundleManifest {
        guard let bytes = manifestBytes else {
            throw bad("it has no BUNDLE.json at its top, so it is not a bundle made by scripts/build-tools-bundle.sh (udocker 1.3's udockertools tarballs are not supported)")
        }
        let manifest = try ToolsBundleManifest.parse(bytes, source: source)
        guard manifest.arch == HostInfo.architecture else {
            throw bad("it is built for \(manifest.arch), this host is \(HostInfo.architecture)")
        }
        let listed = Set(manifest.entries.map(\.path))
        if let extra = items.keys.sorted().first(where: { !listed.contains($0) }) {
            throw bad("it holds '\(extra)', which its BUNDLE.json does not list")
        }
        for e in manifest.entries {
            switch (items[e.path], e.symlink) {
            case (nil, _):
                throw bad("its BUNDLE.json lists '\(e.path)', which is not in the archive")
            case (.file(let sum, let size)?, nil):
                guard size == e.size else {
                    throw bad("'\(e.path)' is \(size) bytes, its BUNDLE.json says \(e.size ?? -1)")
                }
                guard sum == e.sha256 else {
                    throw bad("'\(e.path)' has sha256 \(sum), its BUNDLE.json says \(e.sha256 ?? "")")
                }
            case (.symlink(let target)?, let expected?):
                guard target == expected else {
                    throw bad("'\(e.path)' is a symlink to '\(target)', its BUNDLE.json says '\(expected)'")
                }
                guard let dir = ToolsInstaller.splitEntryPath(e.path)?.0,
                      let dest = ToolsInstaller.symlinkDestination(target, from: dir),
                      case .file? = items[dest] else {
                    throw bad("'\(e.path)' is a symlink to '\(target)', which is not a file of the bundle")
                }
            default:
                throw bad("'\(e.path)' is a \(e.symlink == nil ? "symlink" : "file") in the archive and a \(e.symlink == nil ? "file" : "symlink") in its BUNDLE.json")
            }
        }
        for e in manifest.entries {
            guard let target = e.symlink else { continue }
            let path = staging + "/" + e.path
            if symlink(target, path) != 0 { throw RuntimeError.io("symlink", path, errno) }
        }
        return manifest
    }
}

/// A download into a file, at most `limit` bytes; restarted from zero when the server ignores a Range.
private final class DownloadFile: BodySink {
    let path: String
    private var fd: Int32
    private let limit: UInt64
    private(set) var offset: UInt64 = 0

    init(path: String, limit: UInt64) throws {
        self.path = path
        self.limit = limit
        fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw RuntimeError.io("create", path, errno) }
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        if offset + UInt64(chunk.count) > limit {
            throw RuntimeError.badToolsBundle(path, "the download is larger than \(limit >> 20) MiB")
        }
        try BlobContent.cas { try FileIO.writeAll(fd, chunk, path: path) }
        offset += UInt64(chunk.count)
    }

    func restart() throws {
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 { throw RuntimeError.io("truncate", path, errno) }
        offset = 0
    }
}
