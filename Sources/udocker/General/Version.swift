// udocker version (also -V, --version): the version and the tools tarball, as udocker 1.3 prints, then
// this implementation's version and build (the release's commit).
import ArgumentParser
import Runtime

struct Version: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "version")

    static let helpText = """
        version: Print version information
        version
        """
    static var helpGroup: HelpGroup { .general }

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let conf = context.configuration
        context.output.out("version: \(UdockerVersion.compatible)")
        context.output.out("tarball: \(conf.tarball)")
        context.output.out("tarball_release: \(conf.tarballRelease)")
        context.output.out("implementation: \(UdockerVersion.implementationName) \(UdockerVersion.implementation)")
        context.output.out("build: " + (Release.build ?? "development (not a release)"))
        return 0
    }
}
