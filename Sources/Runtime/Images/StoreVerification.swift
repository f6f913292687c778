// `store verify` for a repository: the store's own check, with each store file changed in place named
// by the images of this repository and the containers (of every repository of the store) that share it.
import CAS

public enum StoreVerification {
    /// Verifies (and with `repair` restores) the store; every changed-file problem's message then says
    /// which images and containers hold the file. A file restored in place is restored for all of them
    /// at once: they share its inode.
    public static func verify(store: Store, images: ImageStore, repair: Bool) throws -> VerifyReport {
        var report = try store.verify(repair: repair)
        let changed = report.problems.indices.filter { report.problems[$0].file != nil }
        guard !changed.isEmpty else { return report }
        let local = (try? images.images()) ?? []
        var containers = [(label: String, info: ContainerInfo, layers: [Digest])]()
        let repositories = (try? StoreRegistry.registrations(storeDir: store.layout.root).map(\.path)) ?? []
        for repo in Set(repositories + [images.repository.topdir]).sorted() {
            let dir = repo + "/containers"
            for c in (try? ContainerStore.list(containersdir: dir)) ?? [] {
                let layers = ContainerStore.materializeInfo(directory: c.directory)?.layers ?? []
                let label = (c.names.first ?? c.id) + (repo == images.repository.topdir ? "" : " (repository \(repo))")
                containers.append((label, c, layers))
            }
        }
        for i in changed {
            guard let f = report.problems[i].file else { continue }
            let imageNames = local.filter { $0.record.layers.contains { $0.diffID == f.layer } }.map(\.name.description)
            let holders = containers.filter { c in
                c.layers.contains(f.layer) && c.info.links(f.path, device: f.device, inode: f.inode)
            }.map(\.label)
            var parts = [String]()
            if !imageNames.isEmpty { parts.append("image(s) " + imageNames.joined(separator: ", ")) }
            if !holders.isEmpty { parts.append("container(s) " + holders.joined(separator: ", ")) }
            report.problems[i].message += parts.isEmpty ? "; no image or container of this repository holds it"
                : "; held by " + parts.joined(separator: "; ")
        }
        return report
    }
}
