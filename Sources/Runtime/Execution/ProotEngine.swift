// P1/P2: PRoot as chroot and root emulator. P2 turns off PRoot's seccomp acceleration. Options
// the installed PRoot lacks (port mapping, kill-on-exit) or mishandles (-k on recent kernels,
// as Debian's 5.1 does) are probed once per binary and left out with a note. PRoot starts the
// program through the exit relay and says nothing but its errors unless -D.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct ProotEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    public var identity: IdentitySupport { .any }

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        let proot = try context.require(.proot, for: mode, root: plan.root)
        let features = ProotFeatures(path: proot.path, cache: ProbeCache(dir: context.probeDir))
        var args: [String] = []
        var notes: [String] = []
        // -v -1: PRoot's info and warning lines ("terminated with signal 15") are not the program's.
        args += ["-v", context.debug ? "9" : "-1"]
        if features.killOnExit && ((try? context.configuration.bool("proot_killonexit")) ?? true) != false {
            args.append("--kill-on-exit")
        }
        if (try? context.configuration.bool("proot_link2symlink")) == true && features.link2symlink {
            args.append("--link2symlink")
        }
        for v in plan.volumes { args += ["-b", "\(v.host):\(v.container)"] }
        if let p = plan.passwdFile { args += ["-b", "\(p):/etc/passwd"] }
        if let g = plan.groupFile { args += ["-b", "\(g):/etc/group"] }
        if let l = plan.linkCopyLibrary { args += ["-b", "\(l):\(LinkCopyLibrary.containerPath)"] }
        let relay = try ExitRelay.install(libdir: context.locator.libdir)
        args += ["-b", "\(relay):\(ExitRelay.containerPath)"]
        if plan.user.isRoot && plan.user.gid == 0 { args.append("-0") } else { args += ["-i", "\(plan.user.uid):\(plan.user.gid)"] }
        if let k = plan.kernel {
            if features.kernelOptionWorks {
                args += ["-k", k]
            } else {
                notes.append("--kernel=\(k) is ignored: \(proot.path) breaks programs when given -k on this kernel; use a newer PRoot (udocker install) for kernel emulation")
            }
        }
        let mapped = plan.ports.filter { $0.host != $0.container }
        if !mapped.isEmpty || plan.publishAll {
            if features.portMapping {
                for p in mapped { args += ["-p", "\(p.container):\(p.host)"] }
                if plan.publishAll && features.netcoop { args.append("-n") }
            } else {
                notes.append("-p/--publish is ignored: \(proot.path) cannot remap ports; the program's ports are the host's (\(mapped.map { "\($0.container)" }.joined(separator: ", ")))")
            }
        }
        args += ["-r", plan.root, "-w", plan.workdir]
        // The library's LD_PRELOAD goes to the program only: the host's loader starting PRoot
        // would look for it on the host, and print an error on every run.
        let preload = plan.linkCopyLibrary.map { _ in
            plan.environment(preloading: LinkCopyLibrary.containerPath).filter { $0.hasPrefix("LD_PRELOAD=") }
        } ?? []
        args += ExitRelay.argv(relay: ExitRelay.containerPath, executable: plan.executable, command: plan.command,
                               environment: preload)

        var env = plan.environment
        let noSeccomp = mode.prootNoSeccomp || (try? context.configuration.bool("proot_noseccomp")) == true
            || context.hostEnvironment["PROOT_NO_SECCOMP"] != nil
        if noSeccomp { env.append("PROOT_NO_SECCOMP=1") }
        if context.hostEnvironment["PROOT_NEW_SECCOMP"] != nil { env.append("PROOT_NEW_SECCOMP=1") }
        if let t = context.hostEnvironment["PROOT_TMP_DIR"] { env.append("PROOT_TMP_DIR=" + t) }
        var launch = Launch(executable: proot.path, arguments: args, environment: env)
        launch.notes = notes
        // PRoot keeps signals to itself and the relay blocks them: they go to the relay's child.
        launch.signalDepth = 2
        return launch
    }
}

/// What an installed PRoot supports, from its --help and one trial run.
struct ProotFeatures {
    let portMapping: Bool
    let netcoop: Bool
    let killOnExit: Bool
    let link2symlink: Bool
    let kernelOptionWorks: Bool

    init(path: String, cache: ProbeCache) {
        let help = cache.answer(path, "help") { Launcher.capture([path, "--help"])?.output ?? "" }
        portMapping = help.containsText("--port")
        netcoop = help.containsText("--netcoop")
        killOnExit = help.containsText("--kill-on-exit")
        link2symlink = help.containsText("--link2symlink")
        // Debian's PRoot 5.1 makes every stat fail with EINVAL under -k on recent kernels, which
        // breaks the dynamic loader: run a dynamic host program with -k and see.
        let kernel = HostInfo.kernelRelease
        let works = cache.answer(path, "kernel-option \(kernel)") {
            guard let probe = ["/bin/true", "/usr/bin/true"].first(where: { FileIO.exists($0) }) else { return "no" }
            return Launcher.capture([path, "-k", kernel, "-r", "/", probe])?.status == 0 ? "yes" : "no"
        }
        kernelOptionWorks = works == "yes"
    }
}
