// import --clone: a tar made by `export --clone` becomes a new container (fresh id, optional name);
// import --tocontainer: a rootfs tar becomes a container without an image.
import CAS
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ContainerImportRequest: Sendable {
    /// The tar file, or "-" for standard input.
    public var source: String
    /// --name: a name for the new container.
    public var name: String?
    /// The image the container says it came from (--tocontainer; udocker's default IMPORTED:unknown).
    public var image: String?

    public init(source: String, name: String? = nil, image: String? = nil) {
        self.source = source; self.name = name; self.image = image
    }
}

public enum ContainerImport {
    /// `import --clone FILE`: unpacks the container directory of an `export --clone` tar (ROOT plus
    /// udocker's metadata files) into REPO/containers/<new id> and names it. Extraction is the store's
    /// hostile-input-safe unpacker, so no entry can reach outside the new directory; device nodes are
    /// skipped when unprivileged. Modes are restored as archived, except that directories keep
    /// owner rwx (as udocker does, so the user can always remove the container). On failure nothing
    /// is left behind. Returns the new container's id.
    public static func importClone(_ request: ContainerImportRequest, repository: Repository) throws -> (id: String, notes: [String]) {
        try unpackContainer(request, repository: repository, rootfsOnly: false)
    }

    /// Unpacks the tar into a new container directory: the whole directory (`--clone`), or, with
    /// `rootfsOnly`, its ROOT, with udocker's metadata files written for it (`--tocontainer`).
    static func unpackContainer(_ request: ContainerImportRequest, repository: Repository, rootfsOnly: Bool) throws -> (id: String, notes: [String]) {
        try checkName(request.name, repository)
        let sourceName = request.source == "-" ? "standard input" : request.source
        let fd: Int32
        if request.source == "-" { fd = 0 } else {
            fd = Glibc.open(request.source, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.badArchive(request.source, "cannot open the tar file: \(String(cString: strerror(errno)))") }
        }
        defer { if fd != 0 { _ = close(fd) } }

        let id = UUID().uuidString.lowercased()
        let containers = repository.containersdir
        let temp = containers + "/.import-\(id)"
        let target = rootfsOnly ? temp + "/ROOT" : temp
        try BlobContent.cas { try FileIO.mkdirs(target, mode: 0o700) }
        var conversionNotes: [String] = []
        do {
            let manifest: LayerManifest
            do { manifest = try LayerUnpacker().unpack(fd: fd, sourceName: sourceName, into: target) } catch let e as CASError {
                if case .badLayer(let why) = e { throw RuntimeError.archiveRead(sourceName, BlobContent.withoutPullHint(why)) }
                throw e
            }
            if rootfsOnly {
                restoreModes(root: target, manifest)
                _ = chmod(target, 0o755)
                let arch = HostInfo.architecture == "x86_64" ? "amd64" : HostInfo.architecture
                try BlobContent.cas {
                    try FileIO.writeAtomically(temp + "/" + ContainerStore.configFile,
                                              Array("{\"architecture\": \"\(arch)\", \"config\": {}, \"os\": \"linux\"}".utf8))
                    try FileIO.writeAtomically(temp + "/" + ContainerStore.imageFile, Array((request.image ?? "IMPORTED:unknown").utf8))
                    try FileIO.writeAtomically(temp + "/" + ContainerStore.execModeFile, Array(ContainerStore.defaultExecMode.utf8))
                }
            } else {
                guard FileIO.exists(temp + "/ROOT") else {
                    throw RuntimeError.badArchive(sourceName, "not a container clone: it has no ROOT directory; to make a container from a rootfs tar use 'udocker import --tocontainer'")
                }
                // ROOT, runtime/ or a metadata file as a link would make later commands write to the host.
                if let why = ContainerDirectoryCheck.problem(temp, deep: true) {
                    throw RuntimeError.badArchive(sourceName, "not imported: in its container directory, \(why)")
                }
                restoreModes(root: temp, manifest)
                // A clone exported in an Fn or Rn mode (by an older udocker) arrives in P1, as sync does.
                conversionNotes = try ModeConversion.convertOwnCopy(containerDir: temp, asidesFrom: nil,
                                                                   imageTree: ModeConversion.imageTree(containerDir: temp, repository: repository))
            }
            // Made 0700 so nobody sees it half-made; now a container directory like any other.
            _ = chmod(temp, 0o755)
            if ud_rename_noreplace(AT_FDCWD, temp, AT_FDCWD, containers + "/" + id) != 0 {
                throw RuntimeError.io("rename", containers + "/" + id, errno)
            }
            var notes = manifest.skipped.map { "not imported: \($0.path): \($0.reason)" } + conversionNotes
            if !manifest.whiteouts.isEmpty { notes.append("not imported: \(manifest.whiteouts.count) whiteout marker(s)") }
            if let name = request.name {
                do { try setName(name, id: id, repository) } catch {
                    try? removeContainerTree(containers + "/" + id)
                    throw error
                }
            }
            return (id, notes)
        } catch {
            try? removeContainerTree(temp)
            throw error
        }
    }

    /// `import --tocontainer FILE [REPO:TAG]`: the rootfs tar becomes a container's ROOT directly
    /// (no image, no store layer: its files are the container's own, as in udocker), with
    /// container.json, imagerepo.name (REPO:TAG or IMPORTED:unknown) and execmode written for it.
    public static func importToContainer(_ request: ContainerImportRequest, repository: Repository) throws -> (id: String, notes: [String]) {
        try checkName(request.name, repository)
        if request.source != "-" && !FileIO.exists(request.source) {
            throw RuntimeError.badArchive(request.source, "tar file does not exist")
        }
        if let image = request.image { _ = try ImageName(parsing: image) }
        return try unpackContainer(request, repository: repository, rootfsOnly: true)
    }

    static func checkName(_ name: String?, _ repository: Repository) throws {
        guard let name else { return }
        try ContainerStore.validateName(name)
        var st = stat()
        if lstat(repository.containersdir + "/" + name, &st) == 0 { throw RuntimeError.containerNameExists(name) }
    }

    /// udocker's name: a relative symlink containers/<name> -> <id>.
    static func setName(_ name: String, id: String, _ repository: Repository) throws {
        let link = repository.containersdir + "/" + name
        if symlink(id, link) != 0 {
            if errno == EEXIST { throw RuntimeError.containerNameExists(name) }
            throw RuntimeError.io("symlink", link, errno)
        }
    }

    /// Sets the archived modes (the unpacker leaves store modes: read-only files). Paths are
    /// resolved beneath `root` without following symlinks.
    static func restoreModes(root: String, _ m: LayerManifest) {
        let rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { return }
        defer { _ = close(rootFD) }
        for e in m.entries where (e.kind == .file || e.kind == .directory || e.kind == .fifo) && !e.path.isEmpty {
            let fd = ud_openat_beneath(rootFD, e.path, 0o10000000 /* O_PATH */ | O_NOFOLLOW | O_CLOEXEC, 0, 1)
            guard fd >= 0 else { continue }
            var st = stat()
            if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) != S_IFLNK {
                let isDir = (st.st_mode & S_IFMT) == S_IFDIR
                let mode = mode_t(e.mode & 0o7777) | (isDir ? 0o700 : 0)
                _ = chmod("/proc/self/fd/\(fd)", mode)
            }
            _ = close(fd)
        }
    }

    /// Removes a container tree whose directories may be read-only.
    static func removeContainerTree(_ path: String) throws {
        _ = try? runChmodWalk(path)
        try BlobContent.cas { try FileIO.removeTree(path) }
    }

    private static func runChmodWalk(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return }
        _ = chmod(path, (st.st_mode & 0o7777) | 0o700)
        for n in try FileIO.listDirectory(path) { try runChmodWalk(path + "/" + n) }
    }
}
