// Terminal input for login: prompts on stderr, a password read with echo off (restored on Ctrl-C), and
// all of standard input for --password-stdin.
#if canImport(Glibc)
import Glibc
#endif

/// The terminal settings to put back if the user interrupts a password prompt.
nonisolated(unsafe) private var savedTerminal = termios()

enum Terminal {
    /// Whether a person can answer a prompt: standard input is a terminal.
    static var isInteractive: Bool { isatty(0) == 1 }

    /// Writes `text` to stderr and reads one line from standard input; with `echo` false the terminal
    /// does not show what is typed.
    static func prompt(_ text: String, echo: Bool) throws -> String {
        Output.write(2, text)
        guard !echo else { return try readLine() }
        guard tcgetattr(0, &savedTerminal) == 0 else { return try readLine() }
        var quiet = savedTerminal
        quiet.c_lflag &= ~tcflag_t(ECHO)
        quiet.c_lflag |= tcflag_t(ECHONL)
        let previous = signal(SIGINT) { _ in
            _ = tcsetattr(0, TCSANOW, &savedTerminal)
            _exit(130)
        }
        defer {
            _ = tcsetattr(0, TCSANOW, &savedTerminal)
            signal(SIGINT, previous)
        }
        _ = tcsetattr(0, TCSAFLUSH, &quiet)
        return try readLine()
    }

    /// One line of standard input without its end of line.
    private static func readLine() throws -> String {
        var bytes: [UInt8] = []
        var c: UInt8 = 0
        while true {
            let n = read(0, &c, 1)
            if n < 0 {
                if errno == EINTR { continue }
                throw UsageError(description: "cannot read standard input: \(String(cString: strerror(errno)))")
            }
            if n == 0 || c == 0x0a { break }
            bytes.append(c)
        }
        if bytes.last == 0x0d { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Everything on standard input.
    static func readAllStandardInput() throws -> String {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw UsageError(description: "cannot read standard input: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Rows of the terminal on standard output (udocker 1.3 pages search results by it); 24 if unknown.
    static var rows: Int {
        var size = winsize()
        if ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0 { return Int(size.ws_row) }
        return 24
    }
}
