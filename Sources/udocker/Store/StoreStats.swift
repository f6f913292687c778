// udocker store stats: what the store holds, how much deduplication saves, where its index lives, and
// what the repository costs on disk (the store, and the containers' own files).
import ArgumentParser
import Foundation
import CAS
import Runtime

struct StoreStatsCommand: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "stats")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let store = try context.store()
        let s = try store.stats()
        let out = context.output
        out.out("store: \(store.layout.root)")
        out.out("blobs: \(s.blobCount) (\(formatBytes(s.blobBytes)))")
        out.out("unpacked layers: \(s.layerCount) (\(s.unpackedFiles) files, \(formatBytes(s.unpackedBytes)))")
        out.out("references: \(s.refCount) (\(formatBytes(s.referencedBytes)) referenced)")
        out.out("dedup ratio: " + String(format: "%.2f", s.dedupRatio))
        out.out("index: \(s.indexDirectory)" + (s.onNetworkFilesystem ? " (local cache: store is on \(s.filesystem))" : ""))
        let u = try RepositoryUsage.measure(try context.containers())
        out.out("store on disk: \(formatBytes(u.store)) (blobs \(formatBytes(u.blobs)), unpacked layers \(formatBytes(u.layers)), index \(formatBytes(u.index)))"
                + (u.repositoriesSharingStore > 1 ? ", shared by \(u.repositoriesSharingStore) repositories" : ""))
        if let g = store.group { out.out("group: \(g.name) (gid \(g.gid)); protection for your containers: \(store.protection.owner != nil ? "sealed" : "detect only")") }
        let registrations = try StoreRegistry.registrations(storeDir: store.layout.root)
        let users = Set(registrations.map { SharedGroup.userName(of: $0.uid) }).sorted()
        out.out("repositories: \(registrations.count) of \(users.count) user(s) (\(users.joined(separator: ", ")))")
        for r in registrations {
            out.out("  \(r.path) (user \(SharedGroup.userName(of: r.uid)), id \(r.id))")
        }
        out.out("containers: \(u.containers) (own files \(formatBytes(u.containersOwn)) on disk)")
        out.out("repository on disk: \(formatBytes(u.total)) (store and containers' own files)")
        return 0
    }
}
