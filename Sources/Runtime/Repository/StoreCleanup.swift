// udocker gc / store gc: first the store's registry of repositories (a repository that no longer
// exists stops keeping anything), then the store's GC for every repository and member it serves.
import CAS
#if canImport(Glibc)
import Glibc
#endif

public enum StoreCleanup {
    public struct Result: Sendable {
        /// Registrations dropped (or, in a dry run, that would be) because their repository is gone.
        public var droppedRepositories: [StoreRegistry.Registration] = []
        /// One sentence each: what happened to the registry, for the user.
        public var notes: [String] = []
        public var report: GCReport
    }

    /// What a registration's path holds, as this host sees it.
    enum Presence { case present, gone, notVisible }

    static func presence(_ r: StoreRegistry.Registration) -> Presence {
        let file = Repository.metadataFile(r.path)
        var st = stat()
        if lstat(file, &st) == 0 {
            // Another member's repository is often closed to us: unreadable is not gone.
            guard let identity = try? MetadataFiles.readIdentity(file) else { return .notVisible }
            return identity.id == r.id ? .present : .gone
        }
        guard errno == ENOENT || errno == ENOTDIR else { return .notVisible }
        // The repository's parent is here and open to us, the repository is not: removed. A parent
        // that is not here may be another host's local disk; one closed to us, another member's home.
        let parent = FileIO.parent(of: r.path)
        return FileIO.isDirectory(parent) && access(parent, R_OK | X_OK) == 0 ? .gone : .notVisible
    }

    /// Drops the registrations of repositories that are gone (with the store refs their images and
    /// containers held), then runs the store's GC.
    public static func run(store: Store, dryRun: Bool) throws -> Result {
        var dropped = [StoreRegistry.Registration]()
        var notes = [String]()
        let refs = try store.refs()
        for r in try StoreRegistry.registrations(storeDir: store.layout.root) {
            let who = SharedGroup.userName(of: r.uid)
            switch presence(r) {
            case .present:
                continue
            case .notVisible:
                notes.append("kept repository \(r.path) of user \(who): it cannot be seen from here (another host's disk, or a directory closed to you)")
            case .gone:
                dropped.append(r)
                let holders = refs.keys.filter { $0.hasPrefix("repo/\(r.id)/") }
                notes.append("\(dryRun ? "would drop" : "dropped") repository \(r.path) of user \(who) from the store's registry: it no longer exists"
                             + (holders.isEmpty ? "" : "; its \(holders.count) image(s) and container(s) no longer keep anything"))
                guard !dryRun else { continue }
                for h in holders.sorted() { try store.removeRef(holder: h) }
                let file = store.layout.repositoriesDir + "/" + r.id
                if unlink(file) != 0 && errno != ENOENT { throw RuntimeError.io("unlink", file, errno) }
            }
        }
        return Result(droppedRepositories: dropped, notes: notes, report: try store.gc(dryRun: dryRun))
    }
}
