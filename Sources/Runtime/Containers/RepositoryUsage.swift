// What a repository costs on disk (`store stats`): the store's blobs, unpacked layers and index, and
// the files its containers do not share with the store, each in allocated blocks.
import CAS

public struct RepositoryUsage: Sendable, Equatable {
    public var blobs: UInt64
    /// Unpacked layers, including the inodes containers are linked to (counted here, once).
    public var layers: UInt64
    /// The store's index (on local disk when the store is on a network filesystem).
    public var index: UInt64
    public var containers: Int
    /// The containers' own files (DiskUsage.own, summed).
    public var containersOwn: UInt64
    /// Repositories registered in the store (more than one: the store's part is shared with others).
    public var repositoriesSharingStore: Int

    public var store: UInt64 { blobs + layers + index }
    public var total: UInt64 { store + containersOwn }

    /// Measures the store of `containers` and the containers of its repository: one walk of the
    /// store's blobs and layers and one of each container's ROOT.
    public static func measure(_ containers: ContainerStore) throws -> RepositoryUsage {
        let store = containers.store
        let registered = (try? StoreRegistry.registrations(storeDir: store.layout.root).count) ?? 1
        let list = try containers.containers()
        return RepositoryUsage(
            blobs: ContainerTree.usage(store.layout.blobsDir)?.total ?? 0,
            layers: ContainerTree.usage(store.layout.layersDir)?.total ?? 0,
            index: ContainerTree.usage(store.indexDirectory)?.total ?? 0,
            containers: list.count,
            containersOwn: list.reduce(0) { $0 + (containers.diskUsage($1.id)?.own ?? 0) },
            repositoriesSharingStore: max(1, registered))
    }
}
