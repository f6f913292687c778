// `run` on an existing container (or a --location tree): the mode from its execmode file, the
// engine, the plan, then the launch. Opens neither the store nor its index, so that hundreds of
// concurrent runs of one container start fast and never contend.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public struct ContainerRun: Sendable {
    public let repository: Repository
    public let configuration: Configuration
    public let environment: [String: String]
    public let debug: Bool

    public init(repository: Repository, configuration: Configuration, environment: [String: String], debug: Bool) {
        self.repository = repository
        self.configuration = configuration
        self.environment = environment
        self.debug = debug
    }

    public var context: EngineContext {
        EngineContext(configuration: configuration,
                      locator: EngineLocator(configuration: configuration, bindir: repository.bindir,
                                             libdir: repository.libdir, environment: environment),
                      hostEnvironment: environment, debug: debug, probeDir: repository.topdir + "/.probes")
    }

    /// The mode recorded in the container, else the configured default.
    public func mode(containerDir: String?) throws -> ExecMode {
        guard let dir = containerDir,
              let bytes = try? BeneathFiles.read(dir + "/" + ContainerStore.execModeFile, beneath: dir) else {
            return ExecMode.defaultMode(configuration)
        }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters()
        guard let m = ExecMode(parsing: text) else {
            throw RuntimeError.badContainer(path: dir, reason: "its execmode file says '\(text)', which is not a mode; fix it with 'udocker setup --execmode=P1'")
        }
        return m
    }

    /// Prepares the run of container `id` (or of the tree at `location` when id is nil).
    public func prepare(id: String?, location: String?, options: RunOptions) throws -> (plan: RunPlan, launch: Launch) {
        let containerDir: String?
        let root: String
        let containerID: String
        let names: [String]
        let runDir: String
        if let id {
            let dir = repository.containersdir + "/" + id
            try ContainerDirectoryCheck.check(dir)
            containerDir = dir
            root = dir + "/ROOT"
            containerID = id
            names = ContainerStore.names(of: id, containersdir: repository.containersdir)
            runDir = dir + "/runtime"
        } else if let location {
            guard location.hasPrefix("/") else {
                throw RuntimeError.badRunOption("--location=\(location) is not an absolute path", "give the container tree's full path")
            }
            containerDir = nil
            root = location
            containerID = "location"
            names = []
            runDir = configuration.tmpdir + "/udocker-\(getuid())-location"
        } else {
            throw RuntimeError.internalFailure("run without a container or location")
        }
        let mode = try self.mode(containerDir: containerDir)
        let engine = Engines.make(mode, context: context)
        var plan = try RunPlanner(configuration: configuration, hostEnvironment: environment)
            .plan(id: containerID, containerDir: containerDir, root: root, names: names, mode: mode,
                  options: options, identity: engine.identity, runDir: runDir)
        // What the container links, read once for the library below and the check after the run.
        let materialized = containerDir.flatMap { ContainerStore.materializeInfo(directory: $0) }
        // Apptainer's own binds and environment rules leave it out: S1 runs without the library.
        if mode.family != .singularity, materialized?.linksSealedFiles(store: StoreLayout(root: repository.storeDir)) == true,
           LinkCopyLibrary.suits(hostProgram: root + plan.executable) {
            plan.linkCopyLibrary = try LinkCopyLibrary.install(libdir: repository.libdir)
        }
        var launch = try engine.prepare(plan)
        if let id, let check = StoreChangeCheck.begin(repository: repository, containerID: id, info: materialized) {
            launch.afterRun = { check.finish() }
        }
        return (plan, launch)
    }

    /// udocker's start-up banner (written to standard error, so it never mixes with the output), drawn
    /// with udocker's character for the engine: `*` PRoot, `#` Fakechroot, `%` runc/crun, `/` Apptainer.
    public static func banner(_ plan: RunPlan) -> String {
        let c: String
        switch plan.mode.family {
        case .proot: c = "*"
        case .fakechroot: c = "#"
        case .runc: c = "%"
        case .singularity: c = "/"
        }
        let line = String(repeating: c, count: 78)
        let blank = c + String(repeating: " ", count: 76) + c
        let title = "STARTING " + plan.containerID
        let pad = max(0, 76 - title.count)
        let middle = c + String(repeating: " ", count: pad / 2) + title + String(repeating: " ", count: pad - pad / 2) + c
        return [line, blank, middle, blank, line, "executing: " + FileIO.basename(of: plan.command[0])].joined(separator: "\n")
    }
}
