// Messages to the user at udocker's verbosity levels (0 errors .. 3 info .. 5 debug):
// results and info on stdout, warnings, debug and errors on stderr, as udocker 1.3 does.
#if canImport(Glibc)
import Glibc
#endif

struct Output {
    static let error = 0, message = 1, warning = 2, info = 3, verbose = 4, debug = 5

    /// The verbosity: verbose_level, UDOCKER_LOGLEVEL, -D (5), -q (1).
    let level: Int
    /// Where Info lines go: stdout as in udocker, stderr when stdout holds a JSON document.
    var infoFD: Int32 = 1

    /// Command results (help, showconf, ...): always printed.
    func out(_ text: String) { Output.write(1, text + "\n") }

    func info(_ text: String) {
        if level >= Output.info { Output.write(infoFD, "Info: " + text + "\n") }
    }

    func warning(_ text: String) {
        if level >= Output.warning { Output.write(2, "Warning: " + text + "\n") }
    }

    func debug(_ text: String) {
        if level >= Output.debug { Output.write(2, "Debug: " + text + "\n") }
    }

    /// An error line on stderr; always printed.
    static func error(_ text: String) { write(2, "Error: " + text + "\n") }

    /// Unbuffered, so stdout and stderr lines keep their order when both go to one terminal.
    static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return   // stdout closed (e.g. `udocker help | head`): nothing more to do
            }
            bytes = bytes.dropFirst(n)
        }
    }
}
