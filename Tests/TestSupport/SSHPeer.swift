// The far host of the sync-over-ssh tests: user udocker-peer reached by key login through the test
// sshd that scripts/setup-host.sh starts on 127.0.0.1 (its settings in /etc/udocker-test-sshd/peer.env).
import Foundation

public struct SSHPeer: Sendable {
    public static let envFile = "/etc/udocker-test-sshd/peer.env"

    public let user: String
    public let home: String
    public let port: Int
    public let key: String

    /// The peer, or nil on a machine without the setup (the tests that need it are then skipped).
    public static let shared: SSHPeer? = {
        guard let text = try? String(contentsOfFile: envFile, encoding: .utf8) else { return nil }
        var v = [String: String]()
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            if kv.count == 2 { v[kv[0]] = kv[1] }
        }
        guard let user = v["UDOCKER_TEST_PEER_USER"], let home = v["UDOCKER_TEST_PEER_HOME"],
              let port = v["UDOCKER_TEST_SSHD_PORT"].flatMap(Int.init), let key = v["UDOCKER_TEST_PEER_KEY"],
              FileManager.default.isReadableFile(atPath: key) else { return nil }
        return SSHPeer(user: user, home: home, port: port, key: key)
    }()

    /// scripts/helpers/ssh-wire.py of this checkout: an --ssh wrapper that counts bytes each way.
    public static var wireScript: String {
        var root = #filePath
        for _ in 0..<3 { root = (root as NSString).deletingLastPathComponent }
        return root + "/scripts/helpers/ssh-wire.py"
    }

    /// `--ssh` through the wire wrapper: bytes each way written to `countFile` as JSON
    /// ({"sent": N, "received": M}); with `flipAfter`, one byte to the far end is changed after that many.
    public func wiredSSHCommand(countFile: String, flipAfter: Int? = nil) -> String {
        "python3 \(Self.wireScript) --count \(countFile)" + (flipAfter.map { " --flip-after \($0)" } ?? "") + " -- " + sshCommand
    }

    /// The `--ssh` value: key login, no prompt, the host key checked against known_hosts.
    public var sshCommand: String { "ssh -i \(key) -o BatchMode=yes -o StrictHostKeyChecking=yes" }

    /// ssh://user@127.0.0.1:PORT/~/PATH: a repository in the peer's home.
    public func url(_ pathInHome: String) -> String { "ssh://\(user)@127.0.0.1:\(port)/~/\(pathInHome)" }

    /// Starts `command` (one shell line) as the peer, through ssh, without waiting for it; with
    /// `output`, its standard output and error go there.
    @discardableResult
    public func start(_ command: String, output: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        p.arguments = ["-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-p", String(port),
                       "-l", user, "127.0.0.1", command]
        if let output {
            p.standardOutput = output
            p.standardError = output
        }
        try p.run()
        return p
    }

    /// Runs `command` (one shell line) as the peer, through ssh.
    public func run(_ command: String) throws -> (status: Int32, output: String) {
        let out = Pipe()
        let p = try start(command, output: out)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
