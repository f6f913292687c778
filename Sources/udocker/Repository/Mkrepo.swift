// udocker mkrepo DIR [--store=DIR]: create a repository, optionally sharing a content store.
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
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "mkrepo <top-repo-dir>", text: "Create another repository in location"),
         HelpLine(usage: "mkrepo --store=<dir> <top-repo-dir>", text: "Create repository using a shared store")]
    }
    static var helpGroup: HelpGroup { .repository }
    static var helpExamples: [String] {
        ["udocker mkrepo /data/myrepo",
         "udocker mkrepo --store=/data/store /data/otherrepo",
         "udocker --repo=/data/myrepo showconf"]
    }

    @Argument var directory: String
    @Option(name: .customLong("store"), help: ArgumentHelp(valueName: "store-dir")) var store: String?

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let creation = try Repository.create(at: directory, storeDir: store,
                                             configuredStoreDir: context.configuration.storedir)
        for action in creation.actions {
            context.output.info(action.description)
        }
        return 0
    }
}
