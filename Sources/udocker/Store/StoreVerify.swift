// udocker store verify [--repair]: rehash the whole store and check its index; exit 1 if anything is wrong.
import ArgumentParser
import CAS
import Runtime

struct StoreVerify: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "verify")
    static var helpText: String { StoreGroup.helpText }
    static var helpGroup: HelpGroup { .repository }

    @Flag(name: .customLong("repair")) var repair = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let images = try context.containers().images
        for note in images.store.notes { context.output.info(note) }
        let report = try StoreVerification.verify(store: images.store, images: images, repair: repair)
        for note in report.notes { context.output.info(note) }
        for line in report.summary { context.output.out(line) }
        return report.isHealthy ? 0 : 1
    }
}
