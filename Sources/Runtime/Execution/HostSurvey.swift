// What `udocker info` reports: the engine programs found (where, from which setting, which
// version), the host facts the engines depend on, and which execution modes can run here and why not.
import CAS

/// One engine program as the locator finds it.
public struct EngineInfo: Sendable {
    public let tool: EngineTool
    /// The name shown; for the singularity tool, the program found (apptainer or singularity).
    public let name: String
    public let located: LocatedTool?
    /// The version from the program's --version, nil when it has none (a library) or did not answer.
    public let version: String?
    /// Why the lookup failed (a setting naming a missing file), nil otherwise.
    public let error: String?
}

public struct ModeInfo: Sendable {
    public let mode: ExecMode
    /// Why it cannot run here; nil when it can.
    public let problem: String?
}

public struct HostSurvey: Sendable {
    public let engines: [EngineInfo]
    public let kernel: String
    public let architecture: String
    public let cgroupLayout: CgroupLayout
    /// Why unprivileged user namespaces do not work, or nil when they do.
    public let userNamespaceProblem: String?
    public let modes: [ModeInfo]
    public let defaultMode: ExecMode

    /// Looks at the tools and the host. Versions are asked once per binary (cached in the
    /// context's probe directory).
    public static func gather(context: EngineContext) -> HostSurvey {
        let cache = ProbeCache(dir: context.probeDir)
        var engines: [EngineInfo] = []
        for tool in EngineTool.allCases {
            do {
                if let t = try context.locator.find(tool) {
                    var version: String? = nil
                    if tool != .fakechroot {
                        let out = cache.answer(t.path, "version") { Launcher.capture([t.path, "--version"])?.output ?? "" }
                        version = versionNumber(in: out)
                    }
                    // Apptainer or Singularity: say which one was found.
                    let name = tool == .singularity
                        ? FileIO.basename(of: t.path).split(separator: "-").first.map(String.init) ?? displayName(tool)
                        : displayName(tool)
                    engines.append(EngineInfo(tool: tool, name: name, located: t, version: version, error: nil))
                } else {
                    engines.append(EngineInfo(tool: tool, name: displayName(tool), located: nil, version: nil, error: nil))
                }
            } catch {
                engines.append(EngineInfo(tool: tool, name: displayName(tool), located: nil, version: nil, error: "\(error)"))
            }
        }
        let availability = ModeAvailability(context: context)
        return HostSurvey(engines: engines, kernel: HostInfo.kernelRelease, architecture: HostInfo.architecture,
                          cgroupLayout: CgroupLayout.current(), userNamespaceProblem: UserNamespaces.unavailableReason(),
                          modes: ExecMode.allCases.map { ModeInfo(mode: $0, problem: availability.problem($0)) },
                          defaultMode: ExecMode.defaultMode(context.configuration))
    }

    static func displayName(_ tool: EngineTool) -> String {
        switch tool {
        case .singularity: return "apptainer/singularity"
        case .fakechroot: return "libfakechroot"
        default: return tool.rawValue
        }
    }

    /// The first word that looks like a version ("1.1.5+ds1", "v0.14") in a --version text:
    /// PRoot draws its name in ASCII art and puts the number at the end of the art's last line.
    public static func versionNumber(in text: String) -> String? {
        for line in text.split(separator: "\n") {
            for word in line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "|" }) {
                var w = Substring(word)
                if w.first == "v" || w.first == "V" { w = w.dropFirst() }
                guard let f = w.first, f.isASCII, f.isNumber, w.contains(".") else { continue }
                let parts = w.split(separator: ".", maxSplits: 1)
                if parts.count == 2, parts[1].first?.isNumber == true { return String(w) }
            }
        }
        return nil
    }
}
