// Lands a container that travelled as image + delta: materialised from the target's own store (its
// image layers, then the delta layer, always copied), with its metadata, built aside and renamed into
// place so that an interrupted arrival never leaves half a container.
import CAS
import CShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ArrivalResult: String, Sendable, Equatable, Codable {
    case created, updated, unchanged
}

public enum ContainerArrival {
    /// Lands `container` in `repository`, whose store must hold its image (by manifest digest) and its
    /// delta blob. A name held by another container is an error and nothing changes (unless
    /// `options.force`, which removes that container). The same id again updates it in place, or
    /// leaves it when it already has this content. `configuration` is needed only for
    /// `options.execmode` (the setup code runs with it); nil loads the default one.
    public static func land(repository: Repository, container: SyncContainer, options: SyncArrivalOptions,
                            configuration: Configuration? = nil) throws -> ArrivalResult {
        let store = try repository.openStore()
        let containers = try ContainerStore(repository: repository, store: store)
        let c = container
        guard !c.id.isEmpty, !c.id.hasPrefix("."), !c.id.contains("/"), Holder.isValid(containers.holder(c.id)) else {
            throw RuntimeError.syncDeltaFailed(container: c.id, reason: "'\(c.id)' is not a container id")
        }
        for n in c.names { try ContainerStore.validateName(n) }
        let image = try findImage(containers, c)
        guard store.hasBlob(c.delta.digest) else {
            throw RuntimeError.syncArrivalDeltaMissing(container: c.id, digest: c.delta.digest.description)
        }
        let existing = containers.resolve(c.id) == c.id ? c.id : nil
        // Names: refused before anything changes, or the containers holding them go (--force).
        var displaced: [String] = []
        for n in c.names {
            if let other = containers.resolve(n), other != c.id {
                guard options.force else { throw RuntimeError.syncContainerNameTaken(name: n, container: c.id, other: other) }
                if !displaced.contains(other) { displaced.append(other) }
            }
        }
        // The container here as it is now: its own delta (stat cached, so usually nothing is read).
        let current = existing.flatMap { try? ContainerDelta.prepare(repository: repository, container: $0) }
        if let existing, let current, displaced.isEmpty, isUnchanged(containers: containers, id: existing, current: current, c) {
            return .unchanged
        }

        let modeText = (options.materialize ?? c.materialize).lowercased()
        guard let mode = MaterializeMode(rawValue: modeText) else {
            throw RuntimeError.syncDeltaFailed(container: c.id, reason: "'\(modeText)' is not a way to materialise a container: use auto, link or copy")
        }
        let linkDirs = c.linkDirs ?? (try? configuration?.materializeLinkDirs) ?? MaterializePolicy.defaultLinkDirs
        let deltaLayer: LayerManifest
        do { deltaLayer = try ContainerStore.io { try store.unpackLayer(blob: c.delta.digest, maxExpansion: 1000) } } catch {
            throw RuntimeError.syncDeltaFailed(container: c.id, reason: "its delta cannot be unpacked: \(error)")
        }
        let diffIDs = image.record.layers.map(\.diffID)
        let holds = Array(Set(image.record.layers.flatMap { [$0.digest, $0.diffID] })).sorted()

        containers.sweepAbandoned()
        let tmp = containers.containersdir + "/.new.\(c.id).\(ProcessIdentity.pid)@\(ProcessIdentity.host)"
        try? ContainerTree.remove(tmp)
        do {
            try ContainerStore.io { try FileIO.mkdirs(tmp + "/" + ContainerStore.rootDir, mode: 0o700) }
            _ = chmod(tmp, 0o755 & ~AtFile.umaskBits)
            // The ref first: from here a GC keeps the layers the new files link to. An update holds
            // what the old container held as well until it is gone.
            let old = existing.flatMap { try? store.ref(holder: containers.holder($0)) } ?? []
            try ContainerStore.io { try store.setRef(holder: containers.holder(c.id), digests: Array(Set(holds + old)).sorted()) }
            try ContainerStore.writeFile(tmp + "/" + ContainerStore.configFile, Array(c.containerJSON))
            try ContainerStore.writeFile(tmp + "/" + ContainerStore.imageFile, Array(c.image.utf8))
            try ContainerStore.writeFile(tmp + "/" + ContainerStore.execModeFile, Array(c.execmode.utf8))
            if c.protected { try ContainerStore.writeFile(tmp + "/" + ContainerStore.protectFile, []) }
            var policy = MaterializePolicy(mode: mode, linkDirs: linkDirs)
            policy.copyFromLayer = diffIDs.count
            if let existing, let current {
                policy.reuse = reusableTree(store: store, containers: containers, id: existing, current: current,
                                            arriving: deltaLayer, image: c.imageManifest)
            }
            let unsealed = mode == .copy ? [] : store.prepareLinkTrees(diffIDs)
            var report = try Materializer(store: store).materialize(layers: diffIDs + [deltaLayer.diffID],
                                                                    into: tmp + "/" + ContainerStore.rootDir, policy: policy)
            report.notes += ContainerStore.notes(unsealed)
            let info = MaterializeInfo(mode: mode, linkDirs: policy.linkDirs, layers: diffIDs, report: report,
                                       sealed: store.protection.owner != nil && unsealed.isEmpty)
            try ContainerStore.writeFile(tmp + "/" + MaterializeInfo.fileName, try ContainerStore.encode(info))
            Failpoint.hit("arrival-before-rename")

            for other in displaced {
                try? containers.unprotect(other)
                try containers.remove(other)
            }
            let dest = containers.directory(c.id)
            if existing != nil {
                // Swapped in one step: the old tree goes to the temp name and is removed after.
                if ud_rename_exchange(AT_FDCWD, tmp, AT_FDCWD, dest) != 0 { throw RuntimeError.io("rename", dest, errno) }
                try? ContainerTree.remove(tmp)
            } else if Glibc.rename(tmp, dest) != 0 {
                throw RuntimeError.io("rename", dest, errno)
            }
            try ContainerStore.io { try store.setRef(holder: containers.holder(c.id), digests: holds) }
            for n in c.names where containers.resolve(n) != c.id { try containers.setName(c.id, n) }
            ContainerDelta.recordArrival(repository: repository, containers: containers, id: c.id, delta: c.delta)
        } catch {
            try? ContainerTree.remove(tmp)
            if !FileIO.exists(containers.directory(c.id)) { _ = try? store.release(holder: containers.holder(c.id)) }
            if error is RuntimeError { throw error }
            throw RuntimeError.syncDeltaFailed(container: c.id, reason: "\(error)")
        }
        if let wanted = options.execmode, wanted.uppercased() != c.execmode {
            try setUp(repository: repository, containers: containers, id: c.id, mode: wanted, configuration: configuration)
        }
        return existing == nil ? .created : .updated
    }

    /// The target's image for an arriving container: the one named as on the source if it has the
    /// manifest digest, else any image with that digest.
    static func findImage(_ containers: ContainerStore, _ c: SyncContainer) throws -> LocalImage {
        if let i = try? containers.images.image(named: c.image), i.record.manifestDigest == c.imageManifest { return i }
        if let i = try containers.images.images().first(where: { $0.record.manifestDigest == c.imageManifest }) { return i }
        throw RuntimeError.syncArrivalImageMissing(container: c.id, image: c.image, manifest: c.imageManifest.description)
    }

    /// Whether container `id` here already is what arrives: same metadata, and its own delta
    /// (`current`) has the same digest.
    static func isUnchanged(containers: ContainerStore, id: String, current: SyncContainer, _ c: SyncContainer) -> Bool {
        let dir = containers.directory(id)
        guard containers.execMode(id) == c.execmode, containers.isProtected(id) == c.protected,
              (try? containers.configJSON(id)) == Array(c.containerJSON),
              ContainerStore.readText(dir + "/" + ContainerStore.imageFile) == c.image,
              Set(c.names).isSubset(of: Set(ContainerStore.names(of: id, containersdir: containers.containersdir))) else { return false }
        return current.delta.digest == c.delta.digest
    }

    /// What of container `id` (being replaced) the new tree may take over: its own copies of the
    /// image's files that neither its delta (`current`) nor the arriving one touches. Only for a
    /// container of the same image in a P mode (in F and R modes files differ from what the delta
    /// describes: patched programs, runc's files); nil when there is nothing to take.
    static func reusableTree(store: Store, containers: ContainerStore, id: String, current: SyncContainer,
                             arriving: LayerManifest, image: Digest) -> ReusableTree? {
        guard current.imageManifest == image, let mode = containers.execMode(id), mode.hasPrefix("P"),
              let old = try? ContainerStore.io({ try store.unpackLayer(blob: current.delta.digest, maxExpansion: 1000) }),
              let info = try? containers.require(id) else { return nil }
        var excluded = Set<String>()
        var opaque: [String] = []
        for m in [old, arriving] {
            for e in m.entries { excluded.insert(e.path) }
            // A removed directory takes what was under it: nothing below a whiteout is taken either.
            excluded.formUnion(m.whiteouts)
            opaque += m.opaqueDirs + m.whiteouts
        }
        return ReusableTree(root: info.root, excluded: excluded, excludedDirectories: opaque)
    }

    /// Sets mode `mode` up for an arrived container with the existing setup code.
    static func setUp(repository: Repository, containers: ContainerStore, id: String, mode: String,
                      configuration: Configuration?) throws {
        guard let m = ExecMode(parsing: mode) else {
            throw RuntimeError.syncDeltaFailed(container: id, reason: "'\(mode)' is not an execution mode (P1, P2, F1-F4, R1-R3, S1)")
        }
        let env = ProcessInfo.processInfo.environment
        let config = try configuration ?? Configuration.load(environment: env, overrides: ConfigOverrides(repo: repository.topdir))
        let runner = ContainerRun(repository: repository, configuration: config, environment: env, debug: false)
        _ = try ModeSwitch(context: runner.context).apply(containerDir: containers.directory(id), to: m, force: false)
    }
}
