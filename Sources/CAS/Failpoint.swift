// Crash-test hooks: a named point in the store's code where a test can have the process killed
// (UDOCKER_FAILPOINT=<name>) to prove that kill -9 there leaves a store that verify passes.
#if canImport(Glibc)
import Glibc
#endif

public enum Failpoint {
    /// Names used by the store. Listed so tests and docs can refer to them.
    public static let names = [
        "ingest-mid-write", "ingest-before-rename", "ingest-after-rename", "index-mid-txn", "unpack-mid",
        "seal-mid", "container-checked", "no-locks",
    ]

    /// Whether UDOCKER_FAILPOINT names `name` (for code that must reach the point by another way).
    public static func armed(_ name: String) -> Bool {
        guard let armed = getenv("UDOCKER_FAILPOINT") else { return false }
        return String(cString: armed) == name
    }

    /// Stops this process (SIGSTOP) when UDOCKER_FAILPOINT equals `name`, until a SIGCONT: a test then
    /// changes what the process will find next, as a racing process would.
    public static func stop(_ name: String) {
        if armed(name) { _ = kill(getpid(), SIGSTOP) }
    }

    /// Sends SIGKILL to this process when the environment variable UDOCKER_FAILPOINT equals `name`.
    /// SIGKILL, not exit(), so no cleanup code runs: exactly what a crash or `kill -9` does.
    public static func hit(_ name: String) {
        guard let armed = getenv("UDOCKER_FAILPOINT") else { return }
        if String(cString: armed) == name {
            _ = kill(getpid(), SIGKILL)
            // kill(self, SIGKILL) does not return, but the signal is delivered asynchronously on some
            // kernels; never let the caller run on.
            while true { pause() }
        }
    }
}
