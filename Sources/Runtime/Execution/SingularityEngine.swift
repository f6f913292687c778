// S1: Apptainer (or Singularity) found on the host runs the container's ROOT directory as a sandbox
// image with `exec`, udocker's way: singularity_options, binds, --pwd, the environment passed in.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct SingularityEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    /// Apptainer runs programs as the user who started it (its --fakeroot needs subuid ranges and
    /// is not used, as udocker only does so when they exist).
    public var identity: IdentitySupport { .hostOnly }

    /// The host trees Apptainer mounts itself; binding them again with -B only makes it complain.
    static let ownMounts: Set<String> = ["/dev", "/proc", "/sys"]

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        let tool = try context.require(.singularity, for: mode, root: plan.root)
        let features = SingularityFeatures(path: tool.path, cache: ProbeCache(dir: context.probeDir))
        var notes: [String] = []

        if !plan.ports.isEmpty { notes.append("this execution mode does not support -p --publish (S1 uses the host's network as it is)") }
        if plan.publishAll { notes.append("this execution mode does not support -P --netcoop --publish-all") }
        if let k = plan.kernel { notes.append("--kernel=\(k) is ignored: only the P modes emulate a kernel version") }
        if let why = Self.identityNote(plan) { notes.append(why) }

        // Mount points Apptainer needs in a sandbox; never created through a symlink.
        for d in ["tmp", "var", "var/tmp", "proc", "dev", "sys"] { Self.makeDirectory(plan.root, d) }

        var args: [String] = []
        if context.debug { args += ["--debug", "-v"] }
        else if features.silent { args.append("--silent") }
        else if features.quiet { args.append("--quiet") }
        args.append("exec")
        args += (try context.configuration.list("singularity_options"))
        // udocker's own bundled executables are not setuid: ask for a user namespace.
        if tool.origin == .repository && !args.contains("-u") && !args.contains("--userns") { args.append("-u") }
        // The container sees the plan's environment only (given below), as in every other mode.
        args.append("--cleanenv")
        args += ["--pwd", plan.workdir]

        let paths = ContainerPath(root: plan.root, volumes: plan.volumePairs)
        var homeSource: String? = nil
        for v in plan.volumes {
            if v.host == v.container && Self.ownMounts.contains(v.host) { continue }
            if v.container == plan.user.home && plan.user.home != "/" { homeSource = v.host; continue }
            args += ["-B", "\(v.host):\(v.container)"]
        }
        // The container's own /tmp and /var/tmp, not the host's that Apptainer binds by default.
        for t in ["/tmp", "/var/tmp"] where !plan.volumes.contains(where: { $0.container == t }) {
            if let h = paths.hostPath(t), FileIO.isDirectory(h) { args += ["-B", "\(h):\(t)"] }
        }
        // Home: a volume on it, else the container's own directory, never the host's home.
        if plan.user.home != "/", let src = homeSource ?? paths.hostPath(plan.user.home), FileIO.isDirectory(src) {
            args += ["--home", "\(src):\(plan.user.home)"]
        } else {
            args.append("--no-home")
        }
        args.append(plan.root)
        // The program by its full path: Apptainer's action script would search its own PATH.
        args.append(plan.executable)
        args += plan.command.dropFirst()

        let prefix = features.isApptainer ? "APPTAINERENV_" : "SINGULARITYENV_"
        var env = Self.toolEnvironment(context.hostEnvironment)
        for e in plan.environment {
            guard let eq = e.firstIndex(of: "=") else { continue }
            let name = e[..<eq]
            // Apptainer sets HOME from --home and refuses it as a variable.
            if name == "HOME" { continue }
            env.append(prefix + e)
        }
        var launch = Launch(executable: tool.path, arguments: args, environment: env)
        launch.notes = notes
        return launch
    }

    /// What Apptainer itself needs from the host environment: where to find its helpers, who the
    /// user is, the terminal, and its own APPTAINER_*/SINGULARITY_* settings (cache, tmp, binds),
    /// but none of the host's *ENV_ variables, which would reach the container.
    static func toolEnvironment(_ host: [String: String]) -> [String] {
        let keep: Set<String> = ["PATH", "HOME", "USER", "LOGNAME", "TERM", "LANG", "LC_ALL", "TMPDIR", "XDG_RUNTIME_DIR"]
        var out: [String] = []
        for (k, v) in host.sorted(by: { $0.key < $1.key }) {
            let own = (k.hasPrefix("APPTAINER_") || k.hasPrefix("SINGULARITY_"))
            let containerVar = k.hasPrefix("APPTAINERENV_") || k.hasPrefix("SINGULARITYENV_")
            if (keep.contains(k) || own) && !containerVar { out.append(k + "=" + v) }
        }
        if host["PATH"] == nil { out.append("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin") }
        return out
    }

    /// A warning when the plan asks for another identity than the host user's.
    static func identityNote(_ plan: RunPlan) -> String? {
        let uid = getuid()
        let entries = PasswdEntry.parse(RunPlanner.readText(plan.root + "/etc/passwd"))
        let ownName = entries.first { $0.uid == uid }?.name ?? Accounts.hostUserName() ?? "udoc\(uid)"
        // Accounts gives host-only engines the host user; what was asked is in requestedUser.
        let asked = plan.requestedUser ?? ""
        let askedRoot = asked == "root" || Accounts.numericUser(asked)?.0 == 0
        if askedRoot && uid != 0 {
            return "S1 runs the program as your own user (uid \(uid)): --user=root is not emulated; use P1 or R1 for a root-like user"
        }
        if plan.user.name == ownName || (uid == 0 && plan.user.name == "root") { return nil }
        if plan.user.name == "root" {
            return "S1 runs the program as your own user (uid \(uid)): --user=root is not emulated; use P1 or R1 for a root-like user"
        }
        return "S1 runs the program as your own user (uid \(uid)): running as '\(plan.user.name)' is not supported"
    }

    /// mkdir ROOT/rel unless a component is missing-and-uncreatable or a symlink (which could lead
    /// outside the container).
    static func makeDirectory(_ root: String, _ rel: String) {
        var path = root
        for c in rel.split(separator: "/") {
            path += "/" + c
            var st = stat()
            if lstat(path, &st) == 0 {
                if (st.st_mode & S_IFMT) != S_IFDIR { return }
                continue
            }
            if mkdir(path, 0o755) != 0 && errno != EEXIST { return }
        }
    }
}

/// What an installed Apptainer/Singularity is, from its --version and --help (cached per binary).
struct SingularityFeatures {
    let isApptainer: Bool
    let silent: Bool
    let quiet: Bool

    init(path: String, cache: ProbeCache) {
        let version = cache.answer(path, "version") { Launcher.capture([path, "--version"])?.output ?? "" }
        let help = cache.answer(path, "help") { Launcher.capture([path, "--help"])?.output ?? "" }
        // Apptainer names itself in --version ("apptainer version 1.3.4"), also when started as
        // `singularity`; SingularityCE and Singularity 3.x do not, and want SINGULARITYENV_.
        let realName = FileIO.basename(of: Self.realPath(path) ?? path)
        isApptainer = version.lowercased().contains("apptainer") || realName.hasPrefix("apptainer")
        silent = help.contains("--silent")
        quiet = help.contains("--quiet")
    }

    static func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}
