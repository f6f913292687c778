// The parts of a container's image configuration (container.json, the OCI/Docker image config)
// that `run` applies: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, Hostname.
import Foundation

public struct ImageRunConfig: Sendable, Equatable {
    public var entrypoint: [String] = []
    public var cmd: [String] = []
    public var env: [String] = []
    public var workingDir = ""
    public var user = ""
    public var exposedPorts: [String] = []
    public var hostname = ""

    public init() {}

    /// Reads the "config" (or legacy "container_config") object of an image configuration.
    /// A container without container.json (udocker 1.3 allows that) runs with empty metadata.
    public init(json bytes: [UInt8]) throws {
        guard let root = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw RuntimeError.badMetadata(path: "container.json", reason: "not a JSON object")
        }
        let config = (root["config"] as? [String: Any]) ?? (root["container_config"] as? [String: Any]) ?? [:]
        entrypoint = Self.strings(config["Entrypoint"])
        cmd = Self.strings(config["Cmd"])
        env = Self.strings(config["Env"])
        workingDir = config["WorkingDir"] as? String ?? ""
        user = config["User"] as? String ?? ""
        hostname = config["Hostname"] as? String ?? ""
        if let ports = config["ExposedPorts"] as? [String: Any] { exposedPorts = ports.keys.sorted() }
    }

    /// Docker allows a string (shell form) where a list is expected.
    private static func strings(_ value: Any?) -> [String] {
        if let list = value as? [Any] { return list.compactMap { $0 as? String } }
        if let s = value as? String, !s.isEmpty { return ["/bin/sh", "-c", s] }
        return []
    }
}
