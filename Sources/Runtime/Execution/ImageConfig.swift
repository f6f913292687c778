// The parts of a container's image configuration (container.json, the OCI/Docker image config)
// that `run` applies: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Hostname.

public struct ImageRunConfig: Sendable, Equatable {
    public var entrypoint: [String] = []
    public var cmd: [String] = []
    public var env: [String] = []
    public var workingDir = ""
    public var user = ""
    public var exposedPorts: [String] = []
    public var hostname = ""

    public init() {}

    /// Reads the "config" (or legacy "container_config") object of an image configuration (with
    /// SmallJSON: every run reads it). A container without container.json (udocker 1.3 allows that)
    /// runs with empty metadata.
    public init(json bytes: [UInt8]) throws {
        guard let root = SmallJSON.parse(bytes), case .object = root else {
            throw RuntimeError.badMetadata(path: "container.json", reason: "not a JSON object")
        }
        let object = { (v: SmallJSON.Value?) -> SmallJSON.Value? in
            if case .object? = v { return v }
            return nil
        }
        let config = object(root["config"]) ?? object(root["container_config"]) ?? .object([:])
        entrypoint = Self.strings(config["Entrypoint"])
        cmd = Self.strings(config["Cmd"])
        env = Self.strings(config["Env"])
        workingDir = config["WorkingDir"]?.string ?? ""
        user = config["User"]?.string ?? ""
        hostname = config["Hostname"]?.string ?? ""
        if case .object(let ports)? = config["ExposedPorts"] { exposedPorts = ports.keys.sorted() }
    }

    /// Docker allows a string (shell form) where a list is expected.
    private static func strings(_ value: SmallJSON.Value?) -> [String] {
        switch value {
        case .array(let list)?: return list.compactMap(\.string)
        case .string(let s)? where !s.isEmpty: return ["/bin/sh", "-c", s]
        default: return []
        }
    }
}
