// Everything an engine needs to start a container's program, worked out once from the run
// options, the image metadata and the configuration, the same way for every engine.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct Volume: Sendable, Equatable {
    public var host: String
    public var container: String
}

public struct PortMap: Sendable, Equatable {
    public var host: UInt16
    public var container: UInt16
}

public struct RunPlan: Sendable {
    public var containerID: String
    /// The container's directory (containers/<id>), or nil for --location.
    public var containerDir: String?
    public var root: String
    public var names: [String]
    public var mode: ExecMode
    /// argv as the program sees it; argv[0] is what the user or image gave.
    public var command: [String]
    /// The program argv[0] names, as an absolute path in the container.
    public var executable: String
    /// The container's environment, "NAME=value", in order, no duplicates.
    public var environment: [String]
    public var workdir: String
    public var user: RunUser
    public var volumes: [Volume]
    public var ports: [PortMap]
    public var publishAll: Bool
    public var cpuset: String?
    public var kernel: String?
    public var devices: [String]
    public var hostname: String
    public var banner: Bool
    /// Where this run's generated files (passwd, group, engine configs) go.
    public var runDir: String
    /// passwd and group files (on the host) to show at /etc/passwd and /etc/group, when the
    /// container's own lack the user (or --hostauth asked for the host's).
    public var passwdFile: String?
    public var groupFile: String?
    /// The user asked for (--user or the image's User), for engines that cannot honour it to say so.
    public var requestedUser: String? = nil
    /// The host path of the library to preload because the container links sealed store files
    /// (LinkCopyLibrary), or nil.
    public var linkCopyLibrary: String? = nil

    public func environmentValue(_ name: String) -> String? {
        let prefix = name + "="
        return environment.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// The environment with `library` added to LD_PRELOAD.
    public func environment(preloading library: String) -> [String] {
        let value = "LD_PRELOAD=" + LinkCopyLibrary.preloadValue(environmentValue("LD_PRELOAD"), adding: library)
        return environment.filter { !$0.hasPrefix("LD_PRELOAD=") } + [value]
    }

    /// Volumes as (host, container) pairs, for ContainerPath.
    public var volumePairs: [(host: String, container: String)] { volumes.map { ($0.host, $0.container) } }
}

public struct RunPlanner: Sendable {
    public let configuration: Configuration
    public let hostEnvironment: [String: String]

    public init(configuration: Configuration, hostEnvironment: [String: String]) {
        self.configuration = configuration
        self.hostEnvironment = hostEnvironment
    }

    /// Works out the plan. `containerDir` nil means --location (a bare tree, no metadata).
    public func plan(id: String, containerDir: String?, root: String, names: [String], mode: ExecMode,
                     options: RunOptions, identity: IdentitySupport, runDir: String) throws -> RunPlan {
        guard FileIO.isDirectory(root) else {
            throw RuntimeError.badContainer(path: root, reason: "its ROOT directory is missing")
        }
        var meta = ImageRunConfig()
        if let dir = containerDir, !options.noMeta, let bytes = try? BeneathFiles.read(dir + "/container.json", beneath: dir) {
            meta = (try? ImageRunConfig(json: bytes)) ?? ImageRunConfig()
        }

        // Volumes first: they decide which passwd file and working directory the program sees.
        let bindHome = options.bindHome ? (hostEnvironment["HOME"] ?? Accounts.hostHome()) : nil
        var volumes = try volumeList(options, bindHome: bindHome)
        // A container set up with `setup --nvidia` gets the host's GPU devices, as udocker does.
        var devices = options.devices
        if let dir = containerDir, NvidiaMode.isEnabled(containerDir: dir) {
            for d in NvidiaMode.devices(configuration)
            where !volumes.contains(where: { $0.container == d }) && !options.novolumes.contains(d) {
                volumes.append(Volume(host: d, container: d))
                devices.append(d)
            }
        }

        // The user, against the passwd file the container will see.
        let passwdPath = options.hostAuth ? "/etc/passwd"
            : volumes.first { $0.container == "/etc/passwd" }?.host ?? root + "/etc/passwd"
        let groupPath = options.hostAuth ? "/etc/group"
            : volumes.first { $0.container == "/etc/group" }?.host ?? root + "/etc/group"
        let passwdText = Self.readText(passwdPath)
        let groupText = Self.readText(groupPath)
        let userSpec = options.user ?? (meta.user.isEmpty ? nil : meta.user)
        let user = try Accounts.resolve(userSpec, passwd: PasswdEntry.parse(passwdText), support: identity,
                                        defaultRoot: true, bindHome: bindHome)
        var passwdFile: String? = nil, groupFile: String? = nil
        let boundByUser = volumes.contains { $0.container == "/etc/passwd" || $0.container == "/etc/group" }
        if !boundByUser && !options.containerAuth {
            if let files = Accounts.withEntry(for: user, passwdText: passwdText, groupText: groupText) {
                passwdFile = try Accounts.contentFile(files.passwd, kind: "passwd", in: runDir, beneath: containerDir)
                groupFile = try Accounts.contentFile(files.group, kind: "group", in: runDir, beneath: containerDir)
            } else if options.hostAuth {
                passwdFile = "/etc/passwd"
                groupFile = "/etc/group"
            }
        }

        // The environment: image Env, then --env-file, then -e, each overriding the last.
        var env = EnvironmentList()
        for e in meta.env { env.set(e) }
        for f in options.envFiles { for e in try Self.envFile(f) { env.set(e) } }
        for e in options.env {
            if e.contains("=") { env.set(e) }
            else if let v = hostEnvironment[e] { env.set(e + "=" + v) }
        }
        env.setIfMissing("HOME=" + user.home)
        env.set("USER=" + user.name)
        env.set("LOGNAME=" + user.name)
        env.set("USERNAME=" + user.name)
        // udocker's prompt: the container's short id, '#' for root.
        env.set("PS1=" + String(id.prefix(8)) + (user.uid == 0 ? "# " : "\\$ "))
        env.setIfMissing("PATH=" + (user.isRoot ? configuration.string("root_path") ?? "/usr/sbin:/sbin:/usr/bin:/bin"
                                    : configuration.string("user_path") ?? "/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"))
        env.set("SHLVL=0")
        env.set("container_ruser=" + (Accounts.hostUserName() ?? String(getuid())))
        env.set("container_root=" + root)
        env.set("container_uuid=" + id)
        env.set("container_execmode=" + mode.rawValue)
        env.set("container_names=" + names.joined(separator: ","))
        let invalid = Set((try? configuration.list("invalid_host_env")) ?? ["VTE_VERSION"])
        let valid = Set((try? configuration.list("valid_host_env")) ?? ["TERM", "PATH", "PROOT_TMP_DIR"])
        for (k, v) in hostEnvironment.sorted(by: { $0.key < $1.key }) where !k.isEmpty && !invalid.contains(k) {
            if options.hostEnv || valid.contains(k) { env.setIfMissing(k + "=" + v) }
        }

        // Working directory: -w, the image's WorkingDir, else the user's home (udocker's default).
        let paths = ContainerPath(root: root, volumes: volumes.map { ($0.host, $0.container) })
        var workdir = options.workdir ?? (meta.workingDir.isEmpty ? user.home : meta.workingDir)
        if workdir.isEmpty { workdir = "/" }
        guard workdir.hasPrefix("/") else {
            throw RuntimeError.badRunOption("invalid working directory '\(workdir)'", "give an absolute path in the container")
        }
        if !paths.isDirectory(workdir) {
            if options.workdir == nil && meta.workingDir.isEmpty { workdir = "/" }
            else if options.workdir == nil {
                // Docker makes the image's WorkingDir when it is missing.
                if let h = paths.hostPath("/") { try? FileIO.mkdirs(h + workdir) }
                if !paths.isDirectory(workdir) {
                    throw RuntimeError.badRunOption("invalid working directory: \(workdir)", "the image's WorkingDir is not a directory in the container")
                }
            } else {
                throw RuntimeError.badRunOption("invalid working directory: \(workdir)", "it is not a directory in the container; give an existing one with -w")
            }
        }
        env.set("PWD=" + workdir)

        // The command: entrypoint + (arguments or the image's Cmd), as in Docker.
        var command: [String]
        if let ep = options.entrypoint {
            let epList = ep.split(separator: " ").map(String.init)
            command = epList + (options.command.isEmpty && epList.isEmpty ? meta.cmd : options.command)
        } else {
            command = meta.entrypoint + (options.command.isEmpty ? meta.cmd : options.command)
        }
        var noCommand = false
        if command.isEmpty {
            command = (try? configuration.list("cmd")) ?? ["bash", "-i"]
            noCommand = true
        }
        let searchPath = env.value("PATH") ?? ""
        guard let executable = paths.findExecutable(command[0], searchPath: searchPath, cwd: workdir) else {
            if noCommand {
                throw RuntimeError.badRunOption("no command given and the image has none (tried \(command.joined(separator: " ")))", "give the command after the container name")
            }
            throw RuntimeError.commandNotFound(command[0])
        }

        var ports: [PortMap] = []
        for p in options.publish { ports.append(try Self.port(p)) }
        let hostname = meta.hostname

        return RunPlan(containerID: id, containerDir: containerDir, root: root, names: names, mode: mode,
                       command: command, executable: executable, environment: env.entries, workdir: workdir,
                       user: user, volumes: volumes, ports: ports, publishAll: options.publishAll,
                       cpuset: options.cpusetCPUs, kernel: options.kernel, devices: devices,
                       hostname: hostname, banner: !options.noBanner, runDir: runDir,
                       passwdFile: passwdFile, groupFile: groupFile, requestedUser: userSpec)
    }

    /// -v volumes, the system directories (unless --nosysdirs), --dri, --bindhome, minus --novol.
    func volumeList(_ o: RunOptions, bindHome: String?) throws -> [Volume] {
        var specs: [(spec: String, optional: Bool)] = []
        if !o.noSysdirs {
            for d in (try? configuration.list("sysdirs_list")) ?? [] { specs.append((d, true)) }
        }
        if o.dri { for d in (try? configuration.list("dri_list")) ?? [] { specs.append((d, true)) } }
        if let h = bindHome { specs.append((h, false)) }
        for v in o.volumes { specs.append((v, false)) }
        for d in o.devices { specs.append((d, false)) }
        var out: [Volume] = []
        for nv in o.novolumes {
            if !specs.contains(where: { $0.spec == nv || $0.spec.split(separator: ":").first.map(String.init) == nv }) {
                throw RuntimeError.badRunOption("--novol=\(nv) is not in the list of volumes", "see the volumes with -D, or drop the option")
            }
        }
        for (spec, optional) in specs {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let host = Self.clean(parts[0])
            let cont = Self.clean(parts.count > 1 && !parts[1].isEmpty ? parts[1] : parts[0])
            if o.novolumes.contains(where: { $0 == spec || Self.clean($0) == host }) { continue }
            guard host.hasPrefix("/") else {
                throw RuntimeError.badRunOption("invalid host volume path: \(parts[0])", "give an absolute host path, e.g. -v /data:/data")
            }
            guard cont.hasPrefix("/"), cont != "/" else {
                throw RuntimeError.badRunOption("invalid container volume path: \(cont)", "give an absolute path other than /, e.g. -v /data:/mnt")
            }
            if !FileIO.exists(host) {
                if optional { continue }
                throw RuntimeError.badRunOption("invalid host volume path: \(host) does not exist", "create it or fix the -v option")
            }
            out.removeAll { $0.container == cont }
            out.append(Volume(host: host, container: cont))
        }
        return out
    }

    static func clean(_ p: String) -> String {
        // Most volume paths are clean already (the system directories are).
        if Paths.isNormalAbsolute(p) && !p.containsText("/..") { return p }
        let absolute = p.hasPrefix("/")
        var parts: [Substring] = []
        for c in p.split(separator: "/") where c != "." && !c.isEmpty {
            if c == ".." { if !parts.isEmpty { parts.removeLast() } } else { parts.append(c) }
        }
        return (absolute ? "/" : "") + parts.joined(separator: "/")
    }

    static func readText(_ path: String) -> String {
        (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Lines NAME=value of an --env-file; blank lines and # comments skipped, NAME alone takes the
    /// host's value as Docker does (left out when the host has none).
    static func envFile(_ path: String) throws -> [String] {
        guard let bytes = try? FileIO.readFile(path) else {
            throw RuntimeError.badRunOption("cannot read --env-file \(path)", "check the path and its permissions")
        }
        var out: [String] = []
        for raw in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.contains("=") { out.append(line) }
            else if let v = getenv(line) { out.append(line + "=" + String(cString: v)) }
        }
        return out
    }

    /// HOST:CONT or IP:HOST:CONT (udocker ignores the IP), optionally /tcp.
    static func port(_ spec: String) throws -> PortMap {
        let base = spec.split(separator: "/").first.map(String.init) ?? spec
        let f = base.split(separator: ":").map(String.init)
        let pair = f.count == 3 ? Array(f[1...]) : f
        guard pair.count == 2, let h = UInt16(pair[0]), let c = UInt16(pair[1]) else {
            throw RuntimeError.badRunOption("invalid --publish value '\(spec)'", "write HOSTPORT:CONTAINERPORT, e.g. -p 8080:80")
        }
        return PortMap(host: h, container: c)
    }
}

/// An ordered environment where a later NAME=value replaces an earlier one in place.
struct EnvironmentList {
    private(set) var entries: [String] = []

    mutating func set(_ e: String) {
        let name = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
        if let i = entries.firstIndex(where: { $0.hasPrefix(name + "=") }) { entries[i] = e } else { entries.append(e) }
    }

    mutating func setIfMissing(_ e: String) {
        let name = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
        if !entries.contains(where: { $0.hasPrefix(name + "=") }) { entries.append(e) }
    }

    func value(_ name: String) -> String? {
        entries.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }
}
