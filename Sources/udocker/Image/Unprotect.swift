// udocker unprotect CONTAINER|IMAGE: remove a container's or an image's delete protection (a container
// id or name is tried first, as udocker does).
import ArgumentParser
import Runtime

struct Unprotect: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "unprotect")

    static let helpText = """
        unprotect: remove delete protection
        unprotect <container-id or repo/image:tag>
        """
    static var helpGroup: HelpGroup { .protect }

    @Argument var target: String

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        let containers = try context.containers()
        if let id = containers.resolve(target) {
            try containers.unprotect(id)
        } else {
            try containers.images.unprotect(target)
        }
        return 0
    }
}
