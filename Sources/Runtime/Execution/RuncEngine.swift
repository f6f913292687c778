// R1-R3: runc or crun rootless, one OCI bundle and state directory per run (removed afterwards);
// R2/R3 run the host's PRoot inside the container for root emulation (R3 without seccomp), which
// starts the program through the exit relay.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim

public struct RuncEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    public var identity: IdentitySupport { .any }

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        let tool: LocatedTool, choiceNote: String?
        switch try RuncTool.choose(context) {
        case .use(let t, let note):
            // Why crun is not used is said once per repository (and crun binary and kernel), as the
            // trial that found it out is cached; with -D on every run.
            let cache = ProbeCache(dir: context.probeDir)
            let crun = (try? context.locator.find(.crun))??.path ?? t.path
            (tool, choiceNote) = (t, note.flatMap {
                context.debug || cache.firstTime(crun, "fallback noted \(HostInfo.kernelRelease)") ? $0 : nil
            })
        case .unusable(let why):
            throw RuntimeError.modeUnusable(mode: mode.rawValue, why: why, usable: ModeAvailability(context: context).usableModes(forRoot: plan.root))
        }
        if geteuid() != 0, let why = UserNamespaces.unavailableReason() {
            throw RuntimeError.modeUnusable(mode: mode.rawValue, why: why, usable: ModeAvailability(context: context).usableModes(forRoot: plan.root))
        }
        var notes: [String] = choiceNote.map { [$0] } ?? []
        if !plan.ports.isEmpty || plan.publishAll {
            notes.append("-p/--publish and -P are not supported in \(mode) (runc/crun modes use the host network): the program's ports are the host's")
        }

        let engineDir = RuncConfigBuilder.engineDir
        var additions = RuncAdditions()
        var extraCapabilities: [String] = []
        if mode.prootInside {
            try addProot(plan, engineDir: engineDir, to: &additions, notes: &notes)
        } else {
            if let k = plan.kernel { notes.append("--kernel=\(k) is ignored in \(mode): only the PRoot modes (P1, P2, R2, R3) emulate a kernel version") }
            if !plan.user.isRoot || plan.user.gid != 0 {
                try addUsernsHelper(plan, engineDir: engineDir, to: &additions)
                // The kernel lets a namespace map its creator's uid only if the creator had CAP_SETFCAP.
                extraCapabilities.append("CAP_SETFCAP")
            }
        }
        if let l = plan.linkCopyLibrary {
            additions.binds.append((l, LinkCopyLibrary.containerPath))
            additions.env.append("LD_PRELOAD=" + LinkCopyLibrary.preloadValue(plan.environmentValue("LD_PRELOAD"), adding: LinkCopyLibrary.containerPath))
        }

        let work = try RunState.make(in: plan.runDir, fallback: context.configuration.tmpdir, beneath: plan.containerDir)
        let isCrun = tool.tool == .crun
        // CAP_DAC_OVERRIDE is never granted (udocker's default list has it): container root is the
        // host user, and with it an in-place write would go through a read-only store file that
        // every linked container shares.
        let capabilities = ((try? context.configuration.list("runc_capabilities")) ?? [])
            .filter { $0.hasPrefix("CAP_") && $0 != "CAP_DAC_OVERRIDE" } + extraCapabilities
        let config = RuncConfigBuilder.make(
            plan, rootPath: Self.realPath(plan.root) ?? plan.root,
            // crun (like udocker's runc engine for it) runs without a terminal of its own.
            terminal: isatty(0) == 1 && isatty(1) == 1 && !isCrun,
            capabilities: Array(Set(capabilities)).sorted(),
            mqueue: (try? context.configuration.bool("runc_nomqueue")) != true,
            hostname: plan.hostname.contains(".") ? plan.hostname : ProcessIdentity.hostname,
            additions: additions)
        do {
            if let c = plan.containerDir, BeneathFiles.relative(work.dir, to: c) != nil {
                try BeneathFiles.writeNew(work.dir + "/config.json", beneath: c, config.json(), mode: 0o600)
            } else {
                try FileIO.writeNew(work.dir + "/config.json", config.json(), mode: 0o600)
            }
        } catch {
            try? FileIO.removeTree(work.dir)
            throw RuntimeError.executionFailed("writing \(work.dir)/config.json", "\(error)")
        }

        var args = ["--root", work.dir + "/state"]
        // runc warns on every run without a pid namespace and cgroups ("cannot toggle freezer"):
        // its log goes to a file (removed with the run's directory); a failure that stops the
        // run is still printed on standard error by runc itself.
        let log = isCrun || context.debug ? nil : work.dir + "/runc.log"
        if context.debug { args.append("--debug") }
        if let log { args += ["--log", log] }
        // No session keyring per container: the kernel allows a user 200 keys, and hundreds of
        // runs at once would exhaust them.
        args += ["run", "--bundle", work.dir, "--no-new-keyring", work.id]
        // runc acts on systemd's notify and socket-activation variables; a job's own are not for it.
        let notForRunc: Set<String> = ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"]
        var env = context.hostEnvironment.filter { !notForRunc.contains($0.key) }.map { "\($0.key)=\($0.value)" }.sorted()
        if !env.contains(where: { $0.hasPrefix("PATH=") }) { env.append("PATH=/usr/local/bin:/usr/bin:/bin") }
        var launch = Launch(executable: tool.path, arguments: args, environment: env)
        launch.notes = notes
        let dir = work.dir
        launch.cleanup = { try? FileIO.removeTree(dir) }
        // runc passes signals to the container's first process; in R2/R3 that is PRoot, which
        // keeps them, and its child is the exit relay, which blocks them: they go to the program.
        if mode.prootInside { launch.signalDepth = 3 }
        return launch
    }

    /// R2/R3: the host's PRoot (with its loader and libraries) under /.udocker/engine, started by
    /// runc as container root; PRoot then gives the program the requested identity.
    private func addProot(_ plan: RunPlan, engineDir: String, to additions: inout RuncAdditions, notes: inout [String]) throws {
        let proot = try context.require(.proot, for: mode, root: plan.root)
        let cache = ProbeCache(dir: context.probeDir)
        let program = try HostProgram(program: proot.path, name: "proot", engineDir: engineDir, cache: cache)
        let features = ProotFeatures(path: proot.path, cache: cache)
        var args = program.argv
        // -v -1: PRoot's info and warning lines ("terminated with signal 15") are not the program's.
        args += ["-v", context.debug ? "9" : "-1"]
        if features.killOnExit && ((try? context.configuration.bool("proot_killonexit")) ?? true) != false {
            args.append("--kill-on-exit")
        }
        if plan.user.isRoot && plan.user.gid == 0 { args.append("-0") } else { args += ["-i", "\(plan.user.uid):\(plan.user.gid)"] }
        if let k = plan.kernel {
            if features.kernelOptionWorks {
                args += ["-k", k]
            } else {
                notes.append("--kernel=\(k) is ignored: \(proot.path) breaks programs when given -k on this kernel; use a newer PRoot (udocker install) for kernel emulation")
            }
        }
        let relay = try ExitRelay.install(libdir: context.locator.libdir)
        let relayInside = engineDir + "/exit-relay"
        args += ["-r", "/", "-w", plan.workdir]
            + ExitRelay.argv(relay: relayInside, executable: plan.executable, command: plan.command)
        additions.binds += program.binds + [(relay, relayInside)]
        additions.args = args
        // PRoot writes its loader into /tmp (Debian's ignores PROOT_TMP_DIR, and the host's value
        // names a host directory): a container without /tmp gets a tmpfs there.
        if !ContainerPath(root: plan.root, volumes: plan.volumePairs).isDirectory("/tmp") {
            additions.tmpfs.append("/tmp")
        }
        additions.unsetEnv.append("PROOT_TMP_DIR")
        if mode.prootNoSeccomp { additions.env.append("PROOT_NO_SECCOMP=1") }
    }

    /// R1 with a non-root --user: runc maps only container root to the host user, so a nested
    /// user namespace maps the requested uid/gid to it (see UsernsHelper).
    private func addUsernsHelper(_ plan: RunPlan, engineDir: String, to additions: inout RuncAdditions) throws {
        let helper: String?
        do { helper = try UsernsHelper.install(in: context.probeDir) } catch {
            throw RuntimeError.executionFailed("writing the user namespace helper to \(context.probeDir)", "\(error)")
        }
        guard let helper else {
            throw RuntimeError.modeUnusable(mode: mode.rawValue, why: "--user=\(plan.user.uid):\(plan.user.gid) needs a helper not built for \(HostInfo.architecture); run as root or use R2",
                                            usable: ModeAvailability(context: context).usableModes(forRoot: plan.root))
        }
        let inside = engineDir + "/userns-exec"
        additions.binds.append((helper, inside))
        additions.args = [inside, "\(plan.user.uid) 0 1", "\(plan.user.gid) 0 1", plan.executable] + plan.command
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// Which of runc and crun runs the container.
enum RuncTool {
    enum Choice {
        case use(LocatedTool, note: String?)
        case unusable(String)
    }

    /// crun when it is installed and works on this host, else runc. Debian's crun 1.8 refuses hosts
    /// with a hybrid cgroup v1/v2 layout whose v2 hierarchy has controllers; a trial run (cached
    /// per binary and kernel) tells.
    static func choose(_ context: EngineContext) throws -> Choice {
        let crun = try context.locator.find(.crun)
        let runc = try context.locator.find(.runc)
        guard let crun else {
            if let runc { return .use(runc, note: nil) }
            return .unusable("neither runc nor crun is installed (looked at UDOCKER_USE_RUNC_EXECUTABLE, \(context.locator.bindir) and PATH)")
        }
        guard let refusal = crunRefusal(crun, context: context) else { return .use(crun, note: nil) }
        if let runc {
            return .use(runc, note: "\(crun.path) \(refusal); running with \(runc.path) instead")
        }
        return .unusable("\(crun.path) \(refusal), and runc is not installed: install runc" + (crun.origin == .setting ? " or unset UDOCKER_USE_RUNC_EXECUTABLE" : ""))
    }

    /// Why crun cannot run containers here, or nil.
    static func crunRefusal(_ crun: LocatedTool, context: EngineContext) -> String? {
        guard CgroupLayout.current() == .hybrid else { return nil }
        let cache = ProbeCache(dir: context.probeDir)
        let answer = cache.answerIfKnown(crun.path, "hybrid-cgroups \(HostInfo.kernelRelease)") {
            trial(crun.path, tmpdir: context.configuration.tmpdir)
        }
        guard answer == "refuses" else { return nil }
        return "refuses this host's hybrid cgroup v1/v2 layout (\"cgroups in hybrid mode not supported\")"
    }

    /// Starts crun on an empty bundle whose program does not exist: a crun that gets as far as
    /// looking for the program accepts the cgroup layout. nil when the trial itself could not run.
    static func trial(_ crun: String, tmpdir: String) -> String? {
        guard let work = try? RunState.make(in: tmpdir + "/udocker-\(getuid())-probes", fallback: tmpdir) else { return nil }
        defer { try? FileIO.removeTree(work.dir) }
        guard (try? FileIO.mkdirs(work.dir + "/rootfs", mode: 0o755)) != nil else { return nil }
        let config = """
            {"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},"args":["/udocker-probe"],"cwd":"/"},\
            "root":{"path":"\(work.dir)/rootfs"},"mounts":[],"linux":{"uidMappings":[{"containerID":0,"hostID":\(getuid()),"size":1}],\
            "gidMappings":[{"containerID":0,"hostID":\(getgid()),"size":1}],"namespaces":[{"type":"pid"},{"type":"mount"},{"type":"user"}]}}
            """
        guard (try? FileIO.writeAtomically(work.dir + "/config.json", Array(config.utf8))) != nil,
              let r = Launcher.capture([crun, "--root", work.dir + "/state", "run", "--bundle", work.dir, "--no-new-keyring", work.id])
        else { return nil }
        return r.output.contains("hybrid mode not supported") ? "refuses" : "accepts"
    }
}

/// One run's directory: the OCI bundle (config.json) and runc's --root state. Named with the
/// owner's pid and host so that directories of runs that died (kill -9) are swept by later runs.
struct RunState {
    let dir: String
    /// The runc/crun container id: unique among concurrent runs (cgroup names when run as root).
    let id: String

    /// With `container` (the container's directory, `parent` below it), the run's directory is made
    /// without following a link on the way, and a link there is refused rather than used.
    static func make(in parent: String, fallback: String, beneath container: String? = nil) throws -> RunState {
        let pid = getpid()
        let token = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let name = "runc-\(pid)-\(token)@\(ProcessIdentity.host)"
        if let container, let rel = BeneathFiles.relative(parent, to: container) {
            let d = try BeneathFiles.makeDirectory(container, rel)
            defer { d.close() }
            if mkdirat(d.fd, name, 0o700) == 0 {
                // Through the descriptor (/proc/self/fd/N is the directory opened, not its name again).
                sweep("/proc/self/fd/\(d.fd)")
                return RunState(dir: parent + "/" + name, id: "udocker-\(pid)-\(token)")
            }
        }
        for base in (container == nil ? [parent] : []) + [fallback + "/udocker-\(getuid())-runc"] {
            guard (try? FileIO.mkdirs(base, mode: 0o700)) != nil else { continue }
            sweep(base)
            let dir = base + "/" + name
            if mkdir(dir, 0o700) == 0 {
                return RunState(dir: dir, id: "udocker-\(pid)-\(token)")
            }
        }
        throw RuntimeError.executionFailed("making a run directory in \(parent)", String(cString: strerror(errno)))
    }

    /// Removes run directories whose process is gone (only this host's: other hosts' pids mean nothing here).
    static func sweep(_ base: String) {
        guard let names = try? FileIO.listDirectory(base) else { return }
        for n in names where n.hasPrefix("runc-") {
            guard let at = n.lastIndex(of: "@"), String(n[n.index(after: at)...]) == ProcessIdentity.host else { continue }
            let parts = n[..<at].split(separator: "-")
            guard parts.count == 3, let pid = Int32(parts[1]), pid != getpid(), ud_pid_alive(pid) == 0 else { continue }
            try? FileIO.removeTree(base + "/" + n)
        }
    }
}
