// Which store protection the tests expect of this host and user: scripts/test.sh runs the suites once as
// a user with a subordinate uid range (sealed) and the protection suites again as one without (detect).
#if canImport(Glibc)
import Glibc
#endif

public enum StoreProtectionExpectation {
    /// UDOCKER_TEST_PROTECTION=detect: this user has no subordinate ids, so store files are not sealed
    /// and runs are checked afterwards instead. Otherwise sealing is required, and its absence is a failure.
    public static var detectOnly: Bool {
        getenv("UDOCKER_TEST_PROTECTION").map { String(cString: $0) } == "detect"
    }
}
