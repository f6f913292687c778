// udocker create [--name=NAME] [--force] [--materialize=auto|link|copy] IMAGE: make a container from
// a pulled image's unpacked layers; prints the container id.
import ArgumentParser
import Runtime

struct Create: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "create")

    static let helpText = """
        create: extract image layers and create a container
        create [options]  <repo/image:tag>
        --name=<container-name>    :set or change the name of the container
        --force                    :allow create even if name already exists
        --materialize=<mode>       :auto (default), link or copy: how files are made
                                    link: hardlinks to the store (fast, read-only files)
                                    copy: independent copies (reflink where possible)
                                    auto: link /usr /bin /sbin /lib* /opt, copy the rest
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "create <repo/image:tag>", text: "Create container from a pulled image")]
    }
    static var helpGroup: HelpGroup { .pullAndRun }
    static var helpExamples: [String] {
        ["udocker create --name=mycontainer  myimage:mytag",
         "udocker create --materialize=link --name=batch  myimage:mytag"]
    }

    @Option(name: .customLong("name")) var name: String?
    @Flag(name: .customLong("force")) var force = false
    @Option(name: .customLong("materialize")) var materialize: String?
    @Argument var image: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let policy = try context.materializePolicy(option: materialize)
        let containers = try context.containers()
        let img = try containers.images.require(image)
        let made = try containers.create(from: img, name: name, force: force, policy: policy)
        context.printNotes(made.report)
        if let n = made.nameNotSet {
            context.output.warning("container name \(n) already exists and stays with its container; the new container has no name")
        }
        let r = made.report
        context.output.debug("\(policy.mode.rawValue): \(r.linked) linked, \(r.copied) copied (\(r.reflinked) by reflink), \(r.emptyFiles) empty, \(r.directories) directories, \(r.symlinks) symlinks")
        context.output.out(made.id)
        return 0
    }
}
