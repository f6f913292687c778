// Version numbers printed by `udocker version` and used where two udocker processes must agree.

public enum UdockerVersion {
    /// The udocker release whose command line and configuration this implementation follows.
    /// `udocker version` prints it as the version, so scripts that check udocker's version work.
    public static let compatible = ConfigDefaults.udockerRelease
    /// This implementation's own version.
    public static let implementation = "0.1.0"
    public static let implementationName = "udocker-swift"
}
