// udocker install [--force] [--purge] [--from=FILE|URL]: installs a tools bundle into the repository's
// bin/ and lib/ and reports where each execution engine tool is found.
import ArgumentParser
import Runtime

struct Install: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "install")

    static let helpText = """
        install: install udocker and its tools
        install [options]
        --force                    :force reinstall
        --purge                    :remove files (be careful): empty bin/ and lib/
        --from=<file|url>          :tools bundle to install: a file, or a file://,
                                    http:// or https:// URL (default: UDOCKER_TARBALL
                                    when it names a local file, else the bundle in
                                    the release udocker runs from, tools/); make one
                                    with scripts/build-tools-bundle.sh
        Without a bundle nothing is downloaded: install reports where each
        tool (proot, runc, crun, patchelf, libfakechroot, apptainer/singularity)
        is found: setting, repository or host.
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "install --from=<file|url>", text: "Install the execution tools bundle")]
    }
    static var helpGroup: HelpGroup { .general }

    @Flag(name: .customLong("force")) var force = false
    @Flag(name: .customLong("purge")) var purge = false
    @Option(name: .customLong("from")) var from: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        if let f = from, f.isEmpty {
            throw UsageError(description: "--from needs a file or URL: see 'udocker install --help'")
        }
        let repo = try context.repository()
        let installer = ToolsInstaller(repository: repo)
        if purge {
            let removed = try installer.purge()
            for f in removed { context.output.debug("removed \(f)") }
            context.output.info("purged \(removed.count) entries from \(repo.bindir) and \(repo.libdir)")
        }
        if let source = from ?? ToolsInstaller.configuredSource(context.configuration) ?? Release.toolsBundles.last {
            context.output.info("installing tools bundle from \(source)")
            let options = try RegistryAccess.httpOptions(configuration: context.configuration,
                                                         environment: context.environment, debug: context.httpDebug)
            switch try installer.install(from: source, force: force, httpOptions: options) {
            case .alreadyInstalled:
                context.output.info("this tools bundle is already installed in \(repo.topdir): nothing changed (use --force to reinstall)")
            case .installed(let removed):
                for f in removed { context.output.debug("removed \(f), which the new bundle does not have") }
                context.output.info("installation of udockertools successful")
            }
        } else {
            context.output.info("no tools bundle given (--from=FILE|URL, or UDOCKER_TARBALL naming a local bundle): nothing was downloaded")
        }
        report(context, installer: installer, repository: repo)
        return 0
    }

    private func report(_ context: CommandContext, installer: ToolsInstaller, repository repo: Repository) {
        if let m = installer.installedManifest() {
            let from = m.builtOn.map { ", built on \($0)" } ?? ""
            context.output.out("bundle: \(installer.manifestPath) (\(m.arch), \(m.entries.count) files\(from))")
        } else {
            context.output.out("bundle: none installed in \(repo.topdir)")
        }
        let locator = EngineLocator(configuration: context.configuration, bindir: repo.bindir, libdir: repo.libdir,
                                    environment: context.environment)
        for s in ToolsInstaller.toolStatus(locator) {
            if let t = s.located {
                context.output.out("\(s.name): \(t.path) (\(t.origin.rawValue))")
            } else if let p = s.problem {
                context.output.out("\(s.name): unusable: \(p)")
            } else {
                context.output.out("\(s.name): not found")
            }
        }
    }
}
