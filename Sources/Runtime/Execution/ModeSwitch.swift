// `setup --execmode=MODE [--force]`: the container's execution mode, and its tree made to fit it (F3/F4
// patched for its current place, restored for other modes, volume links removed outside F1-F4).
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct ModeSwitch: Sendable {
    public let context: EngineContext

    public init(context: EngineContext) { self.context = context }

    /// What a switch did, for the user.
    public struct Report: Sendable, Equatable {
        public var previous: String?
        public var mode: ExecMode
        /// Files patched for F3/F4, and the ROOT they were patched for (nil: no patching ran).
        public var patched = 0
        public var patchedFor: String?
        public var restored = ElfPatcher.Restored()
        /// Container paths of volume links removed.
        public var removedLinks: [String] = []
        public var notes: [String] = []
        public var changedMode: Bool { previous != mode.rawValue }
    }

    /// Whether the container's files are patched (for F3/F4).
    public static func isPatched(containerDir: String) -> Bool {
        ElfPatcher.patchedRoot(containerDir: containerDir) != nil
    }

    /// Switches container `containerDir` to `mode` (nil: stay in its mode), refusing a mode that cannot
    /// run here. `force` patches F3/F4 files again, e.g. for a container whose directory moved, and
    /// records a mode whose tools this host lacks.
    public func apply(containerDir: String, to requested: ExecMode?, force: Bool) throws -> Report {
        try ContainerDirectoryCheck.check(containerDir)
        let lock = try containerLock(containerDir + "/.setup.lock", beneath: containerDir)
        defer { lock.unlock() }
        let modeFile = containerDir + "/" + ContainerStore.execModeFile
        let previous = (try? BeneathFiles.read(modeFile, beneath: containerDir)).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let mode = requested ?? previous.flatMap { ExecMode(parsing: $0) } ?? ExecMode.defaultMode(context.configuration)
        var report = Report(previous: previous, mode: mode)

        // Check the tools before changing anything. A mode `info` says cannot run here is refused unless
        // forced (a repository shared with a host that has its tools); the Fakechroot modes need theirs
        // here, to set the container up, forced or not.
        let availability = ModeAvailability(context: context)
        if let requested, requested.family != .fakechroot, !force, let why = availability.problem(requested) {
            throw RuntimeError.modeUnusable(mode: requested.rawValue,
                why: why + " (add --force to record it anyway, for another host sharing this repository)",
                usable: availability.usableModes(forRoot: containerDir + "/" + ContainerStore.rootDir))
        }
        var patchelf: LocatedTool? = nil
        if mode.family == .fakechroot { _ = try context.require(.fakechroot, for: mode) }
        if mode.patchesELF { patchelf = try context.require(.patchelf, for: mode) }

        let tree = try FakechrootTree(root: containerDir + "/" + ContainerStore.rootDir, stateDir: containerDir,
                                      configuration: context.configuration)
        let record = try ElfPatcher.readRecord(containerDir: containerDir)
        let needsPatch = mode.patchesELF && (record == nil || record?.root != tree.root || force)
        if let record, !mode.patchesELF || needsPatch {
            // patchelf is only needed for files whose original is gone; restoring needs none.
            let tool = patchelf?.path ?? ((try? context.locator.find(.patchelf)) ?? nil)?.path ?? "patchelf"
            let (restored, notes) = try ElfPatcher(containerDir: containerDir, patchelf: tool).restore(record, root: tree.root)
            report.restored = restored
            report.notes += notes
        }
        if mode.family == .fakechroot {
            guard let loader = tree.loader(refresh: force || report.changedMode || needsPatch), let hostLoader = tree.hostLoader(loader) else {
                throw RuntimeError.modeUnusable(mode: mode.rawValue, why: "no dynamic loader (ld.so) was found in the container",
                                                usable: ModeAvailability(context: context).usableModes().filter { !$0.hasPrefix("F") })
            }
            if mode == .F2 { _ = try tree.f2Loader(from: hostLoader) }
            if let tool = patchelf, needsPatch {
                let (record, notes) = try ElfPatcher(containerDir: containerDir, patchelf: tool.path).patch(tree: tree, mode: mode, loader: loader)
                report.patched = record.files.count
                report.patchedFor = record.root
                report.notes += notes
            } else if force || report.changedMode {
                _ = tree.libraryDirs(refresh: true)
            }
        } else {
            report.removedLinks = try FakechrootVolumes.purge(root: tree.root, stateDir: containerDir)
        }
        if previous != mode.rawValue {
            try BeneathFiles.write(modeFile, beneath: containerDir, Array(mode.rawValue.utf8), mode: 0o644)
        }
        return report
    }
}
