// Finds the engine programs (proot, runc, crun, patchelf, libfakechroot, apptainer/singularity):
// an explicit setting (UDOCKER_USE_*_EXECUTABLE, UDOCKER_FAKECHROOT_SO, udocker.conf) first, then
// the repository's bin/ and lib/ (filled by `udocker install`), then the host's PATH.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public enum EngineTool: String, Sendable, CaseIterable {
    case proot, runc, crun, patchelf, fakechroot, singularity

    /// The configuration key that names this tool explicitly.
    public var configKey: String {
        switch self {
        case .proot: return "use_proot_executable"
        case .runc, .crun: return "use_runc_executable"
        case .patchelf: return "use_patchelf_executable"
        case .fakechroot: return "fakechroot_so"
        case .singularity: return "use_singularity_executable"
        }
    }

    /// The environment variable users set for it (shown in error messages).
    public var variable: String {
        switch self {
        case .proot: return "UDOCKER_USE_PROOT_EXECUTABLE"
        case .runc, .crun: return "UDOCKER_USE_RUNC_EXECUTABLE"
        case .patchelf: return "UDOCKER_USE_PATCHELF_EXECUTABLE"
        case .fakechroot: return "UDOCKER_FAKECHROOT_SO"
        case .singularity: return "UDOCKER_USE_SINGULARITY_EXECUTABLE"
        }
    }

    /// Names looked for in the repository's bin/ (lib/ for fakechroot), udocker's names first.
    var bundleNames: [String] {
        let arch = HostInfo.architecture
        switch self {
        case .proot: return ["proot-\(arch)-4_8_0", "proot-\(arch)", "proot"]
        case .runc: return ["runc-\(arch)", "runc"]
        case .crun: return ["crun-\(arch)", "crun"]
        case .patchelf: return ["patchelf-\(arch)", "patchelf"]
        case .fakechroot: return ["libfakechroot.so"]
        case .singularity: return ["apptainer", "singularity"]
        }
    }

    /// Names looked for in PATH; for fakechroot, the library's usual host locations.
    var hostNames: [String] {
        switch self {
        case .proot: return ["proot"]
        case .runc: return ["runc"]
        case .crun: return ["crun"]
        case .patchelf: return ["patchelf"]
        case .singularity: return ["apptainer", "singularity"]
        case .fakechroot:
            let triplet = HostInfo.multiarchTriplet
            return ["/usr/lib/\(triplet)/fakechroot/libfakechroot.so", "/usr/lib64/fakechroot/libfakechroot.so",
                    "/usr/lib/fakechroot/libfakechroot.so", "/usr/local/lib/fakechroot/libfakechroot.so"]
        }
    }
}

/// Where a tool was found.
public struct LocatedTool: Sendable, Equatable {
    public enum Origin: String, Sendable { case setting, repository, host }
    public let tool: EngineTool
    public let path: String
    public let origin: Origin
}

public struct EngineLocator: Sendable {
    public let configuration: Configuration
    public let bindir: String
    public let libdir: String
    public let searchPath: [String]

    public init(configuration: Configuration, bindir: String, libdir: String, environment: [String: String]) {
        self.configuration = configuration
        self.bindir = bindir
        self.libdir = libdir
        self.searchPath = (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
            .split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }

    /// The tool, or nil when it is nowhere. A setting naming a missing file is an error, not a
    /// reason to look elsewhere: the user asked for that file.
    public func find(_ tool: EngineTool) throws -> LocatedTool? {
        if let setting = explicitSetting(tool) {
            // UDOCKER_USE_RUNC_EXECUTABLE names one program; it counts as runc or crun by its name.
            if tool == .runc || tool == .crun {
                let isCrun = FileIO.basename(of: setting).hasPrefix("crun")
                if isCrun != (tool == .crun) { return nil }
            }
            let path = setting.contains("/") ? setting : lookInPath(setting)
            guard let p = path, FileIO.exists(p) else {
                throw RuntimeError.engineMissing(tool: tool.rawValue,
                    why: "\(tool.variable) (or \(tool.configKey) in udocker.conf) names \(setting), which does not exist")
            }
            return LocatedTool(tool: tool, path: p, origin: .setting)
        }
        let dir = tool == .fakechroot ? libdir : bindir
        for name in tool.bundleNames where isUsableFile(dir + "/" + name, executable: tool != .fakechroot) {
            return LocatedTool(tool: tool, path: dir + "/" + name, origin: .repository)
        }
        if tool == .fakechroot {
            // udocker's bundles name the library per distribution (libfakechroot-Debian-12-x86_64.so).
            if let names = try? FileIO.listDirectory(libdir) {
                for n in names.sorted() where n.hasPrefix("libfakechroot") && n.hasSuffix(".so") {
                    return LocatedTool(tool: tool, path: libdir + "/" + n, origin: .repository)
                }
            }
            for p in tool.hostNames where isUsableFile(p, executable: false) {
                return LocatedTool(tool: tool, path: p, origin: .host)
            }
            return nil
        }
        for name in tool.hostNames {
            if let p = lookInPath(name) { return LocatedTool(tool: tool, path: p, origin: .host) }
        }
        return nil
    }

    /// The configured value when it names a program: udocker's "UDOCKER" (bundled only) and the
    /// empty string both mean "search".
    private func explicitSetting(_ tool: EngineTool) -> String? {
        guard let v = configuration.string(tool.configKey), !v.isEmpty, v != "UDOCKER", v != "None" else { return nil }
        return v
    }

    public func lookInPath(_ name: String) -> String? {
        for dir in searchPath where isUsableFile(dir + "/" + name, executable: true) { return dir + "/" + name }
        return nil
    }

    private func isUsableFile(_ path: String, executable: Bool) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        return !executable || access(path, X_OK) == 0
    }
}

/// Facts about the host the engines depend on.
public enum HostInfo {
    public static var architecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #else
        return "unknown"
        #endif
    }

    /// Debian's multiarch directory name (lib/<triplet>).
    public static var multiarchTriplet: String {
        #if arch(x86_64)
        return "x86_64-linux-gnu"
        #elseif arch(arm64)
        return "aarch64-linux-gnu"
        #else
        return "unknown-linux-gnu"
        #endif
    }

    /// The running kernel's release (uname -r).
    public static var kernelRelease: String {
        var u = utsname()
        guard uname(&u) == 0 else { return "" }
        return withUnsafeBytes(of: &u.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
