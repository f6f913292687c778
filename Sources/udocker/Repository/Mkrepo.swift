// udocker mkrepo DIR [--store=DIR [--group=GROUP]] [--from=SOURCE]: create a repository, optionally
// sharing a content store (with a Unix group), optionally filled from another repository (sync --from).
import ArgumentParser
import Runtime

struct Mkrepo: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "mkrepo")

    static let helpText = """
        mkrepo: create a local repository in a specified directory
        mkrepo [options] <directory>
        --store=<store-dir>        :keep image layers in this content store, which
                                    other repositories may share (default
                                    <directory>/store, or the storedir setting)
        --group=<group>            :with --store: make the store a group store of
                                    this Unix group (or join it): every member can
                                    pull into it, layers are stored once for all
        --from=<source>            :fill it with the images and containers of
                                    <source> (a directory, ssh://host/path or
                                    docker://host/namespace), as 'sync --from' does
        --ssh=<command>            :with --from: use this instead of ssh
        --remote-udocker=<path>    :with --from: udocker on the far host
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "mkrepo <top-repo-dir>", text: "Create another repository in location"),
         HelpLine(usage: "mkrepo --store=<dir> <top-repo-dir>", text: "Create repository using a shared store"),
         HelpLine(usage: "mkrepo --store=<dir> --group=<group> <dir>", text: "Create repository using a group store"),
         HelpLine(usage: "mkrepo --from=<dir|ssh://host/dir> <dir>", text: "Create repository filled from another")]
    }
    static var helpGroup: HelpGroup { .repository }
    static var helpExamples: [String] {
        ["udocker mkrepo /data/myrepo",
         "udocker mkrepo --store=/data/store /data/otherrepo",
         "udocker mkrepo --store=/project/udocker-store --group=lab ~/.udocker",
         "udocker --repo=/data/myrepo showconf",
         "udocker mkrepo --from=ssh://login.cluster/~/.udocker /data/copy"]
    }

    @Argument var directory: String
    @Option(name: .customLong("store"), help: ArgumentHelp(valueName: "store-dir")) var store: String?
    @Option(name: .customLong("group")) var group: String?
    @Option(name: .customLong("from")) var from: String?
    @Option(name: .customLong("ssh")) var ssh: String?
    @Option(name: .customLong("remote-udocker")) var remoteUdocker: String?
    @Flag(name: .customLong("install-remote")) var installRemote = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let creation = try Repository.create(at: directory, storeDir: store,
                                             configuredStoreDir: context.configuration.storedir, group: group)
        for action in creation.actions {
            context.output.info(action.description)
        }
        guard let from else { return 0 }
        let location = try SyncLocation.parse(from)
        if case .registry(let host, let namespace) = location {
            return try SyncRegistryOutput.run(host: host, namespace: namespace, selection: SyncSelection(), from: true,
                                              arrival: SyncArrivalOptions(), dryRun: false, quiet: false, reportFile: nil,
                                              repository: creation.repository, context: context)
        }
        let options = SyncRequestOptions(
            location: location, fromLocation: true,
            ssh: SSHOptions(sshCommand: ssh, remoteUdocker: remoteUdocker, installRemote: installRemote,
                            environment: context.environment))
        return try SyncOutput.run(options, repository: creation.repository, context: context, quiet: false, reportFile: nil)
    }
}
