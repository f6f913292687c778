// F1-F4: the host's libfakechroot (LD_PRELOAD) with the container's loader (F1/F2) or the files
// `setup` patched (F3/F4); the program runs as the host user.
#if canImport(Glibc)
import Glibc
#endif
import CAS

/// F1/F2 start programs through the container's loader (F2's copy ignores the host's ld.so.cache and
/// library directories); F3/F4 start the patched files directly (F4 also starts new, unpatched
/// programs through the loader).
public struct FakechrootEngine: ExecutionEngine {
    public let mode: ExecMode
    public let context: EngineContext
    public var identity: IdentitySupport { .hostOnly }

    public init(mode: ExecMode, context: EngineContext) {
        self.mode = mode
        self.context = context
    }

    public func prepare(_ plan: RunPlan) throws -> Launch {
        let library = try context.require(.fakechroot, for: mode)
        let label = plan.names.first ?? plan.containerID
        let tree = try FakechrootTree(root: plan.root, stateDir: try stateDir(plan), configuration: context.configuration)
        if mode.patchesELF {
            guard let dir = plan.containerDir, let patched = ElfPatcher.patchedRoot(containerDir: dir) else {
                throw RuntimeError.containerNotSetUp(container: label, mode: mode.rawValue)
            }
            if patched != tree.root { throw RuntimeError.containerMoved(old: patched, new: tree.root, container: label) }
        }
        var notes = identityNotes(plan)
        if !plan.ports.isEmpty {
            notes.append("-p/--publish is not supported in Fakechroot modes (\(mode)): ignored; the program listens on the host's ports directly (\(plan.ports.map { "\($0.container)" }.joined(separator: ", ")))")
        }
        if plan.publishAll { notes.append("-P/--publish-all is not supported in Fakechroot modes (\(mode)): ignored") }
        if let k = plan.kernel { notes.append("--kernel=\(k) is not supported in Fakechroot modes (\(mode)): ignored") }

        // Paths libfakechroot leaves alone: same-path volumes, the host directories of the others.
        let volumes = try FakechrootVolumes.prepare(plan.volumes, tree: tree)
        var exclude = volumes.exclude
        if let p = plan.passwdFile {
            if p == "/etc/passwd" && plan.groupFile == "/etc/group" {
                exclude += ["/etc/passwd", "/etc/group"]   // --hostauth: the host's own files
            } else {
                try ContainerAccountFiles.install(plan.user, tree: tree)
            }
        }

        let paths = ContainerPath(root: tree.root, volumes: plan.volumePairs)
        guard let programHost = paths.hostPath(plan.executable) else { throw RuntimeError.commandNotFound(plan.command[0]) }
        let (host, argv) = try program(programHost, command: plan.command, executable: plan.executable, paths: paths, searchPath: plan.environmentValue("PATH") ?? "")
        let elf = ElfFile.read(host)

        let libraryDirs = tree.libraryDirs()
        let loaderPath = elf?.interpreter.flatMap { i in tree.hostLoader(i) != nil ? i : nil } ?? tree.loader()
        let loaderHost = loaderPath.flatMap { tree.hostLoader($0) }
        var elfLoader: String? = nil
        if mode != .F3, let l = loaderHost {
            elfLoader = mode == .F2 ? try tree.f2Loader(from: l) : l
        }
        let argv0Option = elfLoader.map { FakechrootTree.loaderTakesArgv0($0) } ?? false

        var executable = host
        var arguments = Array(argv.dropFirst())
        if let e = elf, e.interpreter == nil {
            notes.append("\(argv[0]) is statically linked: libfakechroot cannot act on it, so it sees the host's files, not the container's; use P1 for it")
        } else if elf != nil {
            let patched = mode.patchesELF && (elf?.interpreter?.hasPrefix(tree.root + "/") ?? false)
            if !patched {
                guard let l = elfLoader ?? loaderHost else {
                    throw RuntimeError.modeUnusable(mode: mode.rawValue, why: "no dynamic loader (ld.so) was found in the container for \(argv[0])",
                                                    usable: ModeAvailability(context: context).usableModes().filter { !$0.hasPrefix("F") })
                }
                let takesArgv0 = l == elfLoader ? argv0Option : FakechrootTree.loaderTakesArgv0(l)
                executable = l
                arguments = ["--library-path", libraryDirs.joined(separator: ":")]
                    + (takesArgv0 ? ["--argv0", argv[0]] : []) + [host] + argv.dropFirst()
            }
        }

        var env = EnvironmentList()
        for e in plan.environment { env.set(e) }
        var ldPath = libraryDirs
        for d in (plan.environmentValue("LD_LIBRARY_PATH") ?? "").split(separator: ":").map(String.init) where !d.isEmpty {
            let h = d.hasPrefix("/") ? paths.hostPath(d) ?? tree.root + d : d
            if !ldPath.contains(h) { ldPath.append(h) }
        }
        env.set("LD_LIBRARY_PATH=" + ldPath.joined(separator: ":"))
        // libfakechroot first: its link() translates the paths, then calls the link-copy library's.
        let fakechroot = FakechrootTree.realPath(library.path) ?? library.path
        env.set("LD_PRELOAD=" + (plan.linkCopyLibrary.map { LinkCopyLibrary.preloadValue(fakechroot, adding: $0) } ?? fakechroot))
        env.set("FAKECHROOT_BASE=" + tree.root)
        if !exclude.isEmpty { env.set("FAKECHROOT_EXCLUDE_PATH=" + exclude.joined(separator: ":")) }
        if let l = elfLoader {
            env.set("FAKECHROOT_ELFLOADER=" + l)
            if argv0Option { env.set("FAKECHROOT_ELFLOADER_OPT_ARGV0=--argv0") }
        }
        if let subst = commandSubstitutions(stateDir: tree.stateDir) { env.set("FAKECHROOT_CMD_SUBST=" + subst) }
        if !plan.volumes.contains(where: { $0.container == "/tmp" }) {
            env.set("FAKECHROOT_AF_UNIX_PATH=" + context.configuration.tmpdir)
        }
        if context.debug { env.set("FAKECHROOT_DEBUG=true") }

        var launch = Launch(executable: executable, arguments: arguments, environment: env.entries,
                            hostWorkdir: paths.hostPath(plan.workdir) ?? tree.root)
        if executable == host { launch.argv0 = argv[0] }
        launch.notes = notes
        return launch
    }

    /// The container's directory; for --location a directory of the run directory per tree.
    private func stateDir(_ plan: RunPlan) throws -> String {
        if let d = plan.containerDir { return d }
        let digest = try ContainerStore.io { try SHA256Hasher.digest(of: Array((FakechrootTree.realPath(plan.root) ?? plan.root).utf8)) }
        return plan.runDir + "/fakechroot-" + String(digest.hex.prefix(16))
    }

    /// Warnings about the identity: these modes run as the host user.
    private func identityNotes(_ plan: RunPlan) -> [String] {
        guard let asked = plan.requestedUser, !asked.isEmpty else { return [] }
        let uid = getuid()
        let who = "\(plan.user.name) (uid \(uid), gid \(getgid()))"
        if asked == "root" || Accounts.numericUser(asked)?.0 == 0 {
            return uid == 0 ? [] : ["Fakechroot modes (\(mode)) cannot run as root: running as the host user \(who)"]
        }
        if let (u, _) = Accounts.numericUser(asked), u != uid {
            return ["Fakechroot modes (\(mode)) run with the host's uid: running as \(who), not uid \(u)"]
        }
        return []
    }

    /// The file to start and its argv: the program itself, or for a script its interpreter
    /// (a program the loader can start) with the script's container path as argument.
    private func program(_ host: String, command: [String], executable: String, paths: ContainerPath,
                         searchPath: String) throws -> (String, [String]) {
        let head = Self.head(host)
        if ElfFile.hasMagic(head) { return (host, command) }
        var interpreter: [String]
        if head.count > 2 && head[0] == UInt8(ascii: "#") && head[1] == UInt8(ascii: "!") {
            let line = String(decoding: head.dropFirst(2).prefix { $0 != 10 }, as: UTF8.self)
            let words = line.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            guard let first = words.first, first.hasPrefix("/") else {
                throw RuntimeError.executionFailed("starting \(command[0])", "its #! line names no absolute interpreter path")
            }
            interpreter = [first] + words.dropFirst().filter { !$0.isEmpty }
        } else {
            // What execvp does with an executable that is neither: run it with the shell.
            guard let sh = paths.findExecutable("sh", searchPath: searchPath.isEmpty ? "/bin:/usr/bin" : searchPath, cwd: "/") else {
                throw RuntimeError.commandNotFound("sh")
            }
            interpreter = [sh]
        }
        guard let ih = paths.hostPath(interpreter[0]), ElfFile.hasMagic(Self.head(ih)) else {
            throw RuntimeError.executionFailed("starting \(command[0])", "its interpreter \(interpreter[0]) is not a program in the container")
        }
        return (ih, interpreter + [executable] + command.dropFirst())
    }

    static func head(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { _ = close(fd) }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buf.prefix(n)) : []
    }

    /// fakechroot_cmd_subst with udocker's #RETURN(TRUE)# and #RETURN(FALSE)# (its own
    /// libfakechroot's) turned into tiny static programs that exit 0 or 1, which Debian's runs.
    func commandSubstitutions(stateDir: String) -> String? {
        guard let value = context.configuration.string("fakechroot_cmd_subst"), !value.isEmpty else { return nil }
        var out: [String] = []
        for entry in value.split(separator: ":").map(String.init) {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            var target = parts[1]
            if target.hasPrefix("#") {
                let code: UInt8
                switch target.uppercased() {
                case "#RETURN(TRUE)#": code = 0
                case "#RETURN(FALSE)#": code = 1
                default: continue
                }
                guard let p = ExitProgram.path(code: code, in: stateDir) else { continue }
                target = p
            }
            out.append(parts[0] + "=" + target)
        }
        return out.isEmpty ? nil : out.joined(separator: ":")
    }
}

/// A minimal static ELF program that only exits with a fixed code (no loader, no libc), for
/// FAKECHROOT_CMD_SUBST: "ldconfig" inside the container then does nothing and succeeds.
enum ExitProgram {
    static func path(code: UInt8, in dir: String) -> String? {
        guard let bytes = image(code: code) else { return nil }
        let p = dir + "/fakechroot-exit\(code)"
        if let b = try? FileIO.readFile(p), b == bytes { return p }
        do {
            try FileIO.mkdirs(dir, mode: 0o700)
            try FileIO.writeAtomically(p, bytes, mode: 0o755)
        } catch { return nil }
        return p
    }

    /// ELF header, one PT_LOAD program header, then the code (at file offset 120).
    static func image(code: UInt8) -> [UInt8]? {
        let machine: UInt16
        let text: [UInt8]
        #if arch(x86_64)
        machine = 62
        // mov edi, code; mov eax, 231 (exit_group); syscall
        text = [0xbf, code, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]
        #elseif arch(arm64)
        machine = 183
        // mov x0, #code; mov x8, #94 (exit_group); svc #0
        let movX0: UInt32 = 0xd280_0000 | (UInt32(code) << 5)
        text = [movX0, 0xd280_0bc8, 0xd400_0001].flatMap { w in (0..<4).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
        #else
        return nil
        #endif
        let base: UInt64 = 0x400000
        let size = UInt64(120 + text.count)
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        var b: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
        b += le(UInt16(2)) + le(machine) + le(UInt32(1)) + le(base + 120) + le(UInt64(64)) + le(UInt64(0))
        b += le(UInt32(0)) + le(UInt16(64)) + le(UInt16(56)) + le(UInt16(1)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
        b += le(UInt32(1)) + le(UInt32(5)) + le(UInt64(0)) + le(base) + le(base) + le(size) + le(size) + le(UInt64(0x1000))
        return b + text
    }
}
