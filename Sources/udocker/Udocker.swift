// Entry point of the udocker command line: runs the command and exits with its status.
#if canImport(Glibc)
import Glibc
#endif
import Foundation

@main
struct Udocker {
    static func main() {
        let status = Runner.run(arguments: CommandLine.arguments,
                                environment: ProcessInfo.processInfo.environment)
        exit(status)
    }
}
