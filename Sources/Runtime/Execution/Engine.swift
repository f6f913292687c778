// The execution engine interface and what every engine gets: tools, configuration, debug level.
// An engine turns a RunPlan into a Launch; it never decides what runs, only how.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public protocol ExecutionEngine: Sendable {
    /// How far this engine can change the identity the program sees.
    var identity: IdentitySupport { get }
    /// Checks the engine's tools and the host, then builds the command line.
    func prepare(_ plan: RunPlan) throws -> Launch
}

public struct EngineContext: Sendable {
    public let configuration: Configuration
    public let locator: EngineLocator
    public let hostEnvironment: [String: String]
    public let debug: Bool
    /// Where probe results are cached (one file per tool binary), so `run` does not ask an
    /// engine for its options every time.
    public let probeDir: String

    public init(configuration: Configuration, locator: EngineLocator, hostEnvironment: [String: String],
                debug: Bool, probeDir: String) {
        self.configuration = configuration
        self.locator = locator
        self.hostEnvironment = hostEnvironment
        self.debug = debug
        self.probeDir = probeDir
    }

    /// The tool or a clear error naming the modes that would work (for the container tree `root`,
    /// when given) and how to install the tool.
    public func require(_ tool: EngineTool, for mode: ExecMode, root: String? = nil) throws -> LocatedTool {
        if let t = try locator.find(tool) { return t }
        let name = tool == .fakechroot ? "libfakechroot.so" : tool.rawValue
        // A tools bundle has everything but Apptainer/Singularity.
        let install = tool == .singularity ? "install apptainer or singularity (your distribution's package)"
            : "install it with 'udocker install --from=FILE|URL' (a tools bundle) or your distribution's package"
        let availability = ModeAvailability(context: self)
        throw RuntimeError.modeUnusable(mode: mode.rawValue,
            why: "\(name) is not installed (looked at \(tool.variable), \(tool == .fakechroot ? locator.libdir : locator.bindir) and \(tool == .fakechroot ? "the usual library directories" : "PATH")): \(install)",
            usable: root.map { availability.usableModes(forRoot: $0) } ?? availability.usableModes())
    }
}

public enum Engines {
    /// The engine for a mode.
    public static func make(_ mode: ExecMode, context: EngineContext) -> any ExecutionEngine {
        switch mode.family {
        case .proot: return ProotEngine(mode: mode, context: context)
        case .fakechroot: return FakechrootEngine(mode: mode, context: context)
        case .runc: return RuncEngine(mode: mode, context: context)
        case .singularity: return SingularityEngine(mode: mode, context: context)
        }
    }
}

/// Results of asking a tool about itself, cached per binary (path, size, mtime) under probeDir.
public struct ProbeCache: Sendable {
    public let dir: String

    /// The cached answer for `tool`'s `question`, or the result of `ask` stored for next time.
    public func answer(_ tool: String, _ question: String, ask: () -> String) -> String {
        answerIfKnown(tool, question, ask: { ask() }) ?? ""
    }

    /// Like `answer`, but a nil from `ask` (the tool could not tell) is returned and not stored.
    public func answerIfKnown(_ tool: String, _ question: String, ask: () -> String?) -> String? {
        var st = stat()
        guard stat(tool, &st) == 0 else { return ask() }
        let key = "\(tool)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)|\(question)"
        let file = dir + "/" + Self.name(key)
        if let b = try? FileIO.readFile(file) { return String(decoding: b, as: UTF8.self) }
        guard let value = ask() else { return nil }
        try? FileIO.mkdirs(dir, mode: 0o700)
        try? FileIO.writeAtomically(file, Array(value.utf8), mode: 0o600)
        return value
    }

    /// Whether this is the first time `event` happens for `tool` in this repository (recorded, so
    /// that a note the user needs once, such as why crun is not used, is not repeated on every run).
    public func firstTime(_ tool: String, _ event: String) -> Bool {
        var first = false
        _ = answer(tool, event) { first = true; return "seen" }
        return first
    }

    static func name(_ key: String) -> String {
        guard let d = try? SHA256Hasher.digest(of: Array(key.utf8)) else { return "probe" }
        return "probe-" + String(d.hex.prefix(24))
    }
}
