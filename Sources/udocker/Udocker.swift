// Entry point of the udocker command line: runs the command and exits with its status.
#if canImport(Glibc)
import Glibc
#endif
import Runtime

@main
struct Udocker {
    static func main() {
        var env = environment()
        Release.adopt(&env)
        let status = Runner.run(arguments: CommandLine.arguments, environment: env)
        exit(status)
    }

    /// The process environment, read from `environ` (the first of a name repeated wins, as getenv
    /// finds it): Foundation's ProcessInfo costs a run start about 0.3 ms to set up.
    static func environment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = String(s[..<eq])
                if env[name] == nil { env[name] = String(s[s.index(after: eq)...]) }
            }
            p += 1
        }
        return env
    }
}
