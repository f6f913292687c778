// Attaching a repository to a content store: checking the directory, creating the store, and the
// registration of repositories in it.
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// The registrations of repositories in a store (STORE/repositories/<uuid> → repository path).
public enum StoreRegistry {
    public struct Registration: Sendable, Equatable {
        public let id: String
        public let path: String
        /// The user who registered it (the registration file's owner): in a group store, the member.
        public let uid: UInt32
    }

    /// Every repository registered in the store at `storeDir`, sorted by id.
    public static func registrations(storeDir: String) throws -> [Registration] {
        let dir = StoreLayout(root: storeDir).repositoriesDir
        let names = try MetadataFiles.io { try FileIO.listDirectory(dir) }
        return try names.filter { !$0.hasPrefix(".") }.sorted().compactMap { name in
            guard let path = try MetadataFiles.readPathFile(dir + "/" + name) else { return nil }
            var st = stat()
            return Registration(id: name, path: path, uid: lstat(dir + "/" + name, &st) == 0 ? st.st_uid : 0)
        }
    }
}

enum StoreAttachment {
    /// Entries a store directory may hold (StoreLayout), so a crashed earlier attempt can be resumed.
    static let storeEntries: Set<String> = ["store.json", "blobs", "layers", "refs", "repositories",
                                            "tmp", "locks", "index"]

    /// Refuses a directory that is neither a store, nor new, nor empty; and a store of another format.
    static func check(_ root: String) throws {
        guard FileIO.exists(root) else { return }
        guard FileIO.isDirectory(root) else { throw RuntimeError.notADirectory(root) }
        let layout = StoreLayout(root: root)
        if let identity = try MetadataFiles.readIdentity(layout.storeFile) {
            if identity.format != StoreLayout.formatVersion {
                throw RuntimeError.unsupportedStoreFormat(path: root, version: identity.format)
            }
            return
        }
        let names = try MetadataFiles.io { try FileIO.listDirectory(root) }
        if names.contains(where: { !storeEntries.contains($0) && !$0.hasPrefix(".tmp.") }) {
            throw RuntimeError.notEmptyForStore(root)
        }
    }

    /// Creates the store (layout, store.json, index) if missing; the CAS decides what a store is.
    static func prepare(_ root: String, group: SharedGroup? = nil) throws -> RepositoryAction {
        let existed = FileIO.exists(StoreLayout(root: root).storeFile)
        guard let group else {
            _ = try Store.create(at: root)
            return existed ? .usingStore(root) : .createdStore(root)
        }
        let wasGroup = SharedGroup.ofStore(at: root) != nil
        _ = try Store.create(at: root, group: group)
        return !existed ? .createdGroupStore(root, group.name) : wasGroup ? .joinedGroupStore(root, group.name)
            : .madeGroupStore(root, group.name)
    }

    /// Records the repository in the store; the path is rewritten if the repository moved.
    static func register(repository top: String, id: String, store root: String) throws -> RepositoryAction {
        let file = StoreLayout(root: root).repositoriesDir + "/" + id
        let current = try? MetadataFiles.readPathFile(file)
        if current == top { return .alreadyRegistered(id: id, store: root) }
        try MetadataFiles.writeAtomically(file, top + "\n")
        return current == nil ? .registered(id: id, store: root) : .updatedRegistration(id: id, store: root)
    }
}
