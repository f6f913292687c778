// Resolves a path as a program inside the container would see it: symlinks (absolute ones
// relative to the container root) and volumes followed, never leaving the root except through
// a volume. Used to check the working directory and find the command before starting an engine.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct ContainerPath: Sendable {
    public let root: String
    /// (host, container) bindings, as the engine will make them.
    public let volumes: [(host: String, container: String)]

    public init(root: String, volumes: [(host: String, container: String)]) {
        self.root = root
        self.volumes = volumes
    }

    /// The host path that `path` (absolute, in the container) reaches, following symlinks; nil
    /// when a component is missing or symlinks loop.
    public func hostPath(_ path: String) -> String? {
        var pending = Self.components(path)
        var done: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let c = pending.removeFirst()
            if c == "." || c.isEmpty { continue }
            if c == ".." { if !done.isEmpty { done.removeLast() }; continue }
            done.append(c)
            let inContainer = "/" + done.joined(separator: "/")
            if let (hostDir, rest) = volumeHost(inContainer) {
                // Inside a volume the host's own resolution applies.
                let remainder = (rest + pending).joined(separator: "/")
                let full = remainder.isEmpty ? hostDir : hostDir + "/" + remainder
                return FileIO.exists(full) ? full : nil
            }
            let host = root + inContainer
            var st = stat()
            guard lstat(host, &st) == 0 else {
                // A missing directory above a volume (-v /data:/mnt/data without /mnt in the
                // image): the engine makes it, so the path goes on to the volume.
                if volumes.contains(where: { $0.container.hasPrefix(inContainer + "/") }) { continue }
                return nil
            }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                hops += 1
                guard hops <= 40, let target = ContainerStore.readLink(host) else { return nil }
                done.removeLast()
                if target.hasPrefix("/") { done = [] }
                pending = Self.components(target) + pending
            }
        }
        return root + (done.isEmpty ? "" : "/" + done.joined(separator: "/"))
    }

    /// Whether `path` is a directory in the container.
    public func isDirectory(_ path: String) -> Bool {
        guard let h = hostPath(path) else { return false }
        return FileIO.isDirectory(h)
    }

    /// Finds `name` as execvp would: a path with a slash is taken as is (relative to `cwd`), a
    /// bare name is searched in `searchPath`. Returns the container path of an executable file.
    public func findExecutable(_ name: String, searchPath: String, cwd: String) -> String? {
        if name.contains("/") {
            let p = name.hasPrefix("/") ? name : (cwd == "/" ? "" : cwd) + "/" + name
            return isExecutable(p) ? p : nil
        }
        for dir in searchPath.split(separator: ":") where dir.hasPrefix("/") {
            let p = (dir == "/" ? "" : String(dir)) + "/" + name
            if isExecutable(p) { return p }
        }
        return nil
    }

    private func isExecutable(_ path: String) -> Bool {
        guard let h = hostPath(path) else { return false }
        var st = stat()
        guard stat(h, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return st.st_mode & 0o111 != 0
    }

    private func volumeHost(_ containerPath: String) -> (String, [String])? {
        for v in volumes where v.container == containerPath { return (v.host, []) }
        return nil
    }

    static func components(_ p: String) -> [String] { p.split(separator: "/").map(String.init) }
}
