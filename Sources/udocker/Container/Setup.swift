// udocker setup [--execmode=MODE] [--force] [--purge] [--fixperm] [--nvidia] CONTAINER: container
// execution settings: the mode switch (F3/F4 patching and restoring) is ModeSwitch in Runtime.
import ArgumentParser
import Runtime

struct Setup: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "setup")

    static let helpText = """
        setup: change container execution settings
        setup [options] <container-id>
        --execmode=<mode>       :select execution mode from below
        --force                 :force setup change
        --purge                 :clean mountpoints and files created by udocker
        --fixperm               :attempt to fix file permissions
        --nvidia                :add NVIDIA libraries and binaries

        <mode> is one of the following execution modes:
        P1: proot accelerated mode using seccomp filtering (default)
        P2: proot accelerated mode disabled
        F1: fakechroot starting executables via direct loader invocation
        F2: like F1 plus protected environment and modified ld.so
        F3: fakechroot plus patching of elf headers in binaries and libs
        F4: like F3 plus support for newly created executables via
            dynamic patching of elf headers in binaries and libs
        R1: runc using rootless namespaces, requires recent kernel
            with user namespace support enabled
        R2: proot with root emulation running on top of runc to avoid
            most of the errors related to change of uid or gid
        R3: same as R2 but with proot accelerated mode disabled
        S1: singularity, requires a local installation of singularity,
            if singularity is available in the PATH udocker will use
            it to execute the container
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "setup --execmode=<mode>", text: "Change container execution mode"),
         HelpLine(usage: "setup --nvidia", text: "Setup container to use nvidia GPU"),
         HelpLine(usage: "setup --purge", text: "clean mountpoints and files created by udocker"),
         HelpLine(usage: "setup --fixperm", text: "attempt to fix file permissions")]
    }
    static var helpGroup: HelpGroup { .repository }

    static let validModes = ["P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3", "S1"]

    @Option(name: .customLong("execmode")) var execMode: String?
    @Flag(name: .customLong("force")) var force = false
    @Flag(name: .customLong("purge")) var purge = false
    @Flag(name: .customLong("fixperm")) var fixperm = false
    @Flag(name: .customLong("nvidia")) var nvidia = false
    @Argument var container: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        let id = try containers.usable(container)
        let current = containers.execMode(id)
            ?? context.configuration.string("override_default_execution_mode") ?? ContainerStore.defaultExecMode
        if execMode != nil && containers.isProtected(id) { throw RuntimeError.containerProtected(container) }
        if let m = execMode {
            guard Self.validModes.contains(m.uppercased()) else {
                throw UsageError(description: "invalid execmode: \(m): use one of \(Self.validModes.joined(separator: ", "))")
            }
        }
        if purge {
            for f in try containers.purge(id) { context.output.debug("removed \(f)") }
        }
        if fixperm {
            let n = try containers.fixPermissions(id)
            context.output.debug("fixed the permissions of \(n) entries")
        }
        if nvidia {
            let report = try NvidiaMode(configuration: context.configuration, environment: context.environment)
                .install(containerDir: containers.directory(id), force: force)
            for d in report.hostLibraryDirs { context.output.debug("nvidia libraries from \(d) into \(report.containerLibraryDir)") }
            for f in report.added { context.output.debug("nvidia file added: \(f)") }
            for n in report.notFound { context.output.debug("nvidia file not on this host: \(n)") }
            context.output.info("nvidia mode set")
        }
        // --force alone re-patches an F3/F4 container (with --nvidia it belongs to that).
        if execMode != nil || (force && !nvidia) {
            try switchMode(id: id, containers: containers, context: context)
        }
        if !(force || purge || fixperm || nvidia || execMode != nil) {
            context.output.out("execmode: \(current)")
            context.output.out("nvidiamode: \(NvidiaMode.isEnabled(containerDir: containers.directory(id)) ? "True" : "False")")
        }
        return 0
    }

    /// --execmode and --force: the mode switch (patching or restoring F3/F4 files), then what it did.
    private func switchMode(id: String, containers: ContainerStore, context: CommandContext) throws {
        let dir = containers.directory(id)
        let mode = execMode.flatMap { ExecMode(parsing: $0) }
        if execMode == nil && containers.isProtected(id) && ModeSwitch.isPatched(containerDir: dir) {
            throw RuntimeError.containerProtected(container)
        }
        let runner = ContainerRun(repository: try context.repository(), configuration: context.configuration,
                                  environment: context.environment, debug: context.output.level >= Output.debug)
        let report = try ModeSwitch(context: runner.context).apply(containerDir: dir, to: mode, force: force)
        let r = report.restored
        if r.restored > 0 { context.output.info("restored \(r.restored) patched files byte for byte") }
        if r.reverted > 0 { context.output.info("set back the interpreter and rpath of \(r.reverted) patched files whose originals were gone") }
        if r.changed > 0 { context.output.info("\(r.changed) patched files were changed inside the container since: kept") }
        if r.missing > 0 { context.output.info("\(r.missing) patched files were removed inside the container since") }
        if let root = report.patchedFor {
            context.output.info("patched \(report.patched) ELF files (interpreter and rpath) for \(root)")
        }
        if !report.removedLinks.isEmpty { context.output.info("removed volume links \(report.removedLinks.joined(separator: " "))") }
        for n in report.notes { context.output.info(n) }
        if report.changedMode { context.output.info("execmode: \(report.previous ?? "none") -> \(report.mode)") }
    }
}
