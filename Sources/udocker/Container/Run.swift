// udocker run [options] CONTAINER|IMAGE [COMMAND [ARG...]]: runs a container with its execution
// mode's engine; with an image, pulls (per --pull) and creates a container first.
import ArgumentParser
import Registry
import Runtime

struct Run: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "run")

    static let helpText = """
        run: execute a container
        run [options] <container-id-or-name>
        run [options] <repo/image:tag>
        --rm                       :delete container upon exit
        --workdir=/home/userXX     :working directory set to /home/userXX
        --user=userXX              :run as userXX
        --user=root                :run as root
        --volume=/data:/mnt        :mount host directory /data in /mnt
        --novol=/proc              :remove /proc from list of volumes to mount
        --env="MYTAG=xxx"          :set environment variable
        --env-file=<file>          :read environment variables from file
        --hostauth                 :get user account and group from host
        --containerauth            :use container passwd and group directly
        --nosysdirs                :do not bind the host /proc /sys /run /dev
        --nometa                   :ignore container metadata
        --dri                      :bind directories relevant for dri graphics
        --hostenv                  :pass the host environment to the container
        --cpuset-cpus=<1,2,3-4>    :CPUs in which to allow execution
        --name=<container-name>    :set or change the name of the container
        --bindhome                 :bind the home directory into the container
        --kernel=<kernel-id>       :simulate this Linux kernel version
        --device=/dev/xxx          :pass device to container (R1 mode only)
        --location=<container-dir> :use container outside the repository
        --nobanner                 :don't print a startup banner
        --entrypoint               :override the container metadata entrypoint
        --platform=os/arch         :pull image for OS and architecture
        --pull=<when>              :when to pull (missing|never|always|reuse)
        --httpproxy=<proxy>        :use http proxy, see udocker pull --help
        --registry=<url>           :pull from this registry, see udocker pull --help
        --index=<url>              :docker index, see udocker pull --help
        --materialize=<mode>       :how a new container's files are made
                                    (auto|link|copy), see udocker create --help
        --volumes-from= --dns= --dns-search=
                                   :accepted as udocker does, and ignored (a warning)
        -w= -u= -v= -e=            :short for --workdir= --user= --volume= --env=
        -i -t -a                   :accepted for docker compatibility (stdin and
                                    the terminal always pass through)

        Only available in Rn execution modes:
        --device=/dev/xxx          :pass device to container (R1 mode only)

        Only available in Pn execution modes:
        --publish=<hport:cport>    :map container TCP/IP <cport> into <hport>
        --publish-all              :bind and connect to random ports
        -p= -P --netcoop           :short for --publish= and --publish-all

        run <container-id-or-name> executes an existing container, previously
        created from an image by using: create <repo/image:tag>

        run <repo/image:tag> always creates a new container from the image.
        If needed the image is pulled. This is slow and may waste storage.
        Using run --name=<container-name> --pull=reuse allows to use existing
        container and only pull/create if the <container-name> does not exist.
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "run <container>", text: "Execute container"),
         HelpLine(usage: "run <repo/image:tag>", text: "Create and execute container")]
    }
    static var helpGroup: HelpGroup { .pullAndRun }
    static var helpExamples: [String] {
        ["udocker run mycontainer /bin/ls -l /",
         "udocker run --user=root -v /data:/mnt --env=MYVAR=1 mycontainer",
         "udocker run --rm --pull=missing busybox:latest echo hello"]
    }

    @Flag(name: .customLong("rm")) var remove = false
    @Option(name: [.customShort("w"), .customLong("workdir")]) var workdir: String?
    @Option(name: [.customShort("u"), .customLong("user")]) var user: String?
    @Option(name: [.customShort("v"), .customLong("volume")]) var volumes: [String] = []
    @Option(name: .customLong("novol")) var novolumes: [String] = []
    @Option(name: [.customShort("e"), .customLong("env")]) var env: [String] = []
    @Option(name: .customLong("env-file")) var envFiles: [String] = []
    @Flag(name: .customLong("hostauth")) var hostAuth = false
    @Flag(name: .customLong("containerauth")) var containerAuth = false
    @Flag(name: .customLong("nosysdirs")) var noSysdirs = false
    @Flag(name: .customLong("nometa")) var noMeta = false
    @Flag(name: .customLong("dri")) var dri = false
    @Flag(name: .customLong("hostenv")) var hostEnv = false
    @Option(name: .customLong("cpuset-cpus")) var cpuset: String?
    @Option(name: .customLong("name")) var name: String?
    @Flag(name: .customLong("bindhome")) var bindHome = false
    @Option(name: .customLong("kernel")) var kernel: String?
    @Option(name: .customLong("device")) var devices: [String] = []
    @Option(name: .customLong("location")) var location: String?
    @Flag(name: .customLong("nobanner")) var noBanner = false
    @Option(name: .customLong("entrypoint")) var entrypoint: String?
    @Option(name: .customLong("platform")) var platform: String?
    @Option(name: .customLong("pull")) var pull: String?
    @Option(name: .customLong("httpproxy")) var httpProxy: String?
    @Option(name: .customLong("registry")) var registry: String?
    @Option(name: .customLong("index")) var index: String?
    @Option(name: [.customShort("p"), .customLong("publish")]) var publish: [String] = []
    @Flag(name: [.customShort("P"), .customLong("publish-all"), .customLong("netcoop")]) var publishAll = false
    @Option(name: .customLong("materialize")) var materialize: String?
    // Accepted and ignored, as udocker 1.3.17 does (its "TBD" options).
    @Option(name: .customLong("volumes-from")) var volumesFrom: [String] = []
    @Option(name: .customLong("dns")) var dns: [String] = []
    @Option(name: .customLong("dns-search")) var dnsSearch: [String] = []
    // Accepted for Docker compatibility, as udocker does: stdin and the terminal always pass through.
    @Flag(name: .customShort("i")) var interactive = false
    @Flag(name: .customShort("t")) var tty = false
    @Flag(name: .customShort("a")) var attach = false
    @Argument var target: String?
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    enum PullPolicy: String { case missing, never, always, reuse }

    /// Stands for `--entrypoint=` (no entrypoint): the parser would take the next word as its value.
    static let noEntrypoint = "\u{1}none"

    /// The options that take a value, by every name (from `quickOptions`, run's one table of options).
    static let valueOptions: Set<String> = Set(quickOptions.filter { $0.value.takesValue }.keys)

    static func prepareArguments(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        var optionsEnded = false
        while i < args.count {
            let a = args[i]
            if !optionsEnded && a == "--entrypoint=" {
                out.append("--entrypoint=" + noEntrypoint)
            } else if !optionsEnded && a == "--entrypoint" && i + 1 < args.count && args[i + 1].isEmpty {
                out.append("--entrypoint=" + noEntrypoint)
                i += 1
            } else if !optionsEnded && Self.valueOptions.contains(a) && i + 1 < args.count {
                out += [a, args[i + 1]]
                i += 1
            } else {
                // Everything after the container belongs to the command.
                if !a.hasPrefix("-") { optionsEnded = true }
                out.append(a)
            }
            i += 1
        }
        return out
    }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        var request = RunRequest(
            remove: remove, workdir: workdir, user: user, volumes: volumes, novolumes: novolumes, env: env,
            envFiles: envFiles, hostAuth: hostAuth, containerAuth: containerAuth, noSysdirs: noSysdirs, noMeta: noMeta,
            dri: dri, hostEnv: hostEnv, cpuset: cpuset, name: name, bindHome: bindHome, kernel: kernel, devices: devices,
            location: location, noBanner: noBanner, entrypoint: entrypoint, platform: platform, pull: pull,
            httpProxy: httpProxy, registry: registry, index: index, publish: publish, publishAll: publishAll,
            materialize: materialize,
            ignored: [("--volumes-from", volumesFrom), ("--dns", dns), ("--dns-search", dnsSearch)].filter { !$0.1.isEmpty }.map(\.0),
            target: target, command: command)
        return try request.execute(context)
    }
}

/// What run was asked, however it was parsed (swift-argument-parser above, or Run.quickParse), and
/// the run itself.
struct RunRequest: CommandBody {
    var remove: Bool = false
    var workdir: String? = nil
    var user: String? = nil
    var volumes: [String] = []
    var novolumes: [String] = []
    var env: [String] = []
    var envFiles: [String] = []
    var hostAuth: Bool = false
    var containerAuth: Bool = false
    var noSysdirs: Bool = false
    var noMeta: Bool = false
    var dri: Bool = false
    var hostEnv: Bool = false
    var cpuset: String? = nil
    var name: String? = nil
    var bindHome: Bool = false
    var kernel: String? = nil
    var devices: [String] = []
    var location: String? = nil
    var noBanner: Bool = false
    var entrypoint: String? = nil
    var platform: String? = nil
    var pull: String? = nil
    var httpProxy: String? = nil
    var registry: String? = nil
    var index: String? = nil
    var publish: [String] = []
    var publishAll: Bool = false
    var materialize: String? = nil
    /// Options given that udocker accepts and ignores (--dns, --dns-search, --volumes-from).
    var ignored: [String] = []
    var target: String? = nil
    var command: [String] = []

    typealias PullPolicy = Run.PullPolicy
    static let noEntrypoint = Run.noEntrypoint

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        guard let policy = PullPolicy(rawValue: (pull ?? "missing").lowercased()) else {
            throw UsageError(description: "invalid --pull value '\(pull ?? "")': use missing, never, always or reuse")
        }
        for option in ignored {
            context.output.warning("\(option) is ignored, as udocker ignores it: the container uses the host's network settings")
        }
        var options = RunOptions()
        options.volumes = volumes
        options.novolumes = novolumes
        options.noSysdirs = noSysdirs
        options.workdir = workdir
        options.env = env
        options.envFiles = envFiles
        options.hostEnv = hostEnv
        options.user = user
        options.hostAuth = hostAuth
        options.containerAuth = containerAuth
        options.bindHome = bindHome
        options.entrypoint = entrypoint == Self.noEntrypoint ? "" : entrypoint
        options.noMeta = noMeta
        options.publish = publish
        options.publishAll = publishAll
        options.cpusetCPUs = cpuset
        options.kernel = kernel
        options.dri = dri
        options.devices = devices
        options.noBanner = noBanner
        options.command = command
        if command.first == "--" { options.command.removeFirst() }

        let repo = try context.repository()
        let runner = ContainerRun(repository: repo, configuration: context.configuration,
                                  environment: context.environment, debug: context.output.level >= Output.debug)
        var id: String? = nil
        if let location {
            // With --location the first word after the options is the command.
            if let t = target { options.command.insert(t, at: 0) }
            _ = location
        } else {
            guard let target else {
                throw UsageError(description: "must specify container_id or image:tag")
            }
            id = try containerID(for: target, policy: policy, context: context, repo: repo)
        }

        // --rm: the container goes when the run ends, also when the program could not start (a bad
        // -v, a command not found), as udocker does; so udocker waits for the program instead of
        // becoming it.
        let removing = remove ? id : nil
        let status: Int32
        var prepared = false
        do {
            let (plan, launch) = try runner.prepare(id: id, location: location, options: options)
            prepared = true
            for n in launch.notes { context.output.warning(n) }
            if plan.banner && context.output.level >= Output.info {
                Output.write(2, ContainerRun.banner(plan) + "\n")
            }
            context.output.debug("CMD = \(([launch.executable] + launch.arguments).joined(separator: " "))")
            status = try Launcher.run(launch, mayExec: removing == nil, cpuset: plan.cpuset)
            for line in launch.afterRun?() ?? [] { context.output.warning(line) }
        } catch {
            if let removing {
                do { try removeAfterRun(removing, context) } catch let failed {
                    context.output.warning("--rm: container \(removing) was not removed: \(failed)")
                }
            }
            // A run that cannot be set up (a bad volume, working directory or command) exits 2, as
            // udocker's engines do; other failures are 1.
            if !prepared, let e = error as? RuntimeError, e.isRunSetUpFailure {
                Output.error(String(describing: e))
                return 2
            }
            throw error
        }
        if let removing { try removeAfterRun(removing, context) }
        return status
    }

    /// --rm's removal (protected containers stay, as in udocker).
    private func removeAfterRun(_ id: String, _ context: CommandContext) throws {
        let containers = try context.containers()
        if !containers.isProtected(id) { _ = try containers.remove(id) }
    }

    /// The container to run: `target` as a container id or name; else an image, created (and
    /// pulled when the policy says so) into a new container.
    private func containerID(for target: String, policy: PullPolicy, context: CommandContext, repo: Repository) throws -> String {
        if policy == .reuse, let n = name, let id = ContainerStore.resolve(n, containersdir: repo.containersdir) { return id }
        if let id = ContainerStore.resolve(target, containersdir: repo.containersdir) {
            if let n = name { try context.containers().setName(id, n) }
            return id
        }
        let containers = try context.containers()
        var image = try? containers.images.require(target)
        if policy == .always || (image == nil && policy != .never) {
            var args = [target]
            if let platform { args.append("--platform=" + platform) }
            if let registry { args.append("--registry=" + registry) }
            if let index { args.append("--index=" + index) }
            if let httpProxy { args.append("--httpproxy=" + httpProxy) }
            var pull = try Pull.parse(args)
            do { _ = try pull.execute(context) } catch {
                // Not a container, and the registry has no such image: likely a mistyped container name.
                if image == nil, let e = containers.noContainerOrImage(target, cause: error) { throw e }
                throw error
            }
            image = try containers.images.require(target)
        }
        guard let img = image else {
            throw containers.noContainerOrLocalImage(target)
        }
        let made = try containers.create(from: img, name: name, force: policy == .reuse,
                                         policy: try context.materializePolicy(option: materialize))
        context.printNotes(made.report)
        return made.id
    }
}
