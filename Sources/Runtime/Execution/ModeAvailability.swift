// Which execution modes can run on this host with the tools found: for error messages, `info`
// and `install`. Cheap checks (files, sysctls, probe answers cached per tool binary).
#if canImport(Glibc)
import Glibc
#endif

public struct ModeAvailability: Sendable {
    public let context: EngineContext

    public init(context: EngineContext) { self.context = context }

    /// Why `mode` cannot run here, or nil when its tools are present.
    public func problem(_ mode: ExecMode) -> String? {
        let has = { (t: EngineTool) -> Bool in ((try? context.locator.find(t)) ?? nil) != nil }
        switch mode.family {
        case .proot:
            return has(.proot) ? nil : "proot not found"
        case .fakechroot:
            if !has(.fakechroot) { return "libfakechroot.so not found" }
            if mode.patchesELF && !has(.patchelf) { return "patchelf not found" }
            return nil
        case .runc:
            if !has(.runc) && !has(.crun) { return "neither runc nor crun found" }
            if geteuid() != 0, let why = UserNamespaces.unavailableReason() { return why }
            // The engine's own choice: crun unless it refuses this host's cgroup layout (a cached trial).
            switch (try? RuncTool.choose(context)) ?? .unusable("UDOCKER_USE_RUNC_EXECUTABLE names a missing file") {
            case .unusable(let why): return why
            case .use: break
            }
            if mode.prootInside && !has(.proot) { return "proot not found (R2 and R3 run it inside the container)" }
            return nil
        case .singularity:
            return has(.singularity) ? nil : "neither apptainer nor singularity found"
        }
    }

    public func usableModes() -> [String] {
        ExecMode.allCases.filter { problem($0) == nil }.map(\.rawValue)
    }

    /// The usable modes that can run the container tree `root`: the Fakechroot modes only when it has
    /// a dynamic loader (libfakechroot works through it; a static image, such as busybox, has none).
    public func usableModes(forRoot root: String) -> [String] {
        let modes = usableModes()
        guard modes.contains(where: { $0.hasPrefix("F") }) else { return modes }
        let tree = try? FakechrootTree(root: root, stateDir: root, configuration: context.configuration)
        return tree?.guessLoader() != nil ? modes : modes.filter { !$0.hasPrefix("F") }
    }
}
