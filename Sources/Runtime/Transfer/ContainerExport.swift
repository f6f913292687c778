// export: a container's ROOT as a tar (rootfs, like `docker export`), or with --clone the whole
// container directory with udocker's metadata (container.json, imagerepo.name, execmode, ...).
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// A container directory of a repository, found by id or name (udocker's layout: containers/<id>,
/// names are symlinks to it in containers/). The container module owns containers; this is the
/// small part export and import need.
public struct ContainerLocation: Sendable, Equatable {
    public let id: String
    /// REPO/containers/<id>, the real directory.
    public let directory: String
    public var root: String { directory + "/ROOT" }

    /// The container named `idOrName` (an id, or a name symlink in containers/). Nothing outside
    /// the containers directory is ever accepted, whatever a name symlink points to.
    public static func resolve(_ idOrName: String, in repository: Repository) throws -> ContainerLocation {
        let dir = repository.containersdir
        guard !idOrName.isEmpty, !idOrName.contains("/"), idOrName != ".", idOrName != ".." else {
            throw RuntimeError.containerNotFound(idOrName)
        }
        guard let realDir = realPath(dir) else { throw RuntimeError.containerNotFound(idOrName) }
        guard let real = realPath(dir + "/" + idOrName), FileIO.parent(of: real) == realDir,
              FileIO.isDirectory(real), !FileIO.basename(of: real).hasPrefix(".") else {
            throw RuntimeError.containerNotFound(idOrName)
        }
        return ContainerLocation(id: FileIO.basename(of: real), directory: dir + "/" + FileIO.basename(of: real))
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}

public enum ContainerExport {
    /// Writes the container's ROOT (or, with `clone`, its whole directory) as a tar to `output`
    /// ("-" is standard output). A file is written under a temp name and renamed when complete.
    @discardableResult
    public static func export(_ container: String, repository: Repository, to output: String,
                              clone: Bool) throws -> TreeArchiveReport {
        let c = try ContainerLocation.resolve(container, in: repository)
        let tree = clone ? c.directory : c.root
        if FileIO.exists(c.root) { try ContainerDirectoryCheck.check(c.directory) }
        guard FileIO.isDirectory(c.root) else {
            throw RuntimeError.badArchive(c.directory, "the container has no ROOT directory; it is damaged or still being created")
        }
        let out = try ArchiveOutput(path: output, refuseExisting: false)
        do {
            let w = try ArchiveWriter(fd: out.fd, destination: out.name)
            var archiver = TreeArchiver(root: tree)
            if clone { archiver.conversion = try ModeConversion.exportConversion(containerDir: c.directory, repository: repository) }
            let report = try archiver.write(to: w)
            try w.finish()
            try out.commit()
            return report
        } catch {
            out.abort()
            throw error
        }
    }
}
