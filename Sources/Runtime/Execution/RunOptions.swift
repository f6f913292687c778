// What `udocker run` was asked to do, as parsed from its command line (udocker 1.3's options).

public struct RunOptions: Sendable {
    public var volumes: [String] = []
    public var novolumes: [String] = []
    public var noSysdirs = false
    public var workdir: String?
    public var env: [String] = []
    public var envFiles: [String] = []
    public var hostEnv = false
    public var user: String?
    public var hostAuth = false
    public var containerAuth = false
    public var bindHome = false
    /// nil: the image's entrypoint; "": none; else the program (split on spaces, as udocker does).
    public var entrypoint: String?
    public var noMeta = false
    public var publish: [String] = []
    public var publishAll = false
    public var cpusetCPUs: String?
    public var kernel: String?
    public var dri = false
    public var devices: [String] = []
    public var noBanner = false
    /// The command and its arguments given after the container; empty: the image's.
    public var command: [String] = []

    public init() {}
}
