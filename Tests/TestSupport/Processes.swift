// Test helpers: run a command to completion, start background processes that are killed when the
// test process exits, temp dirs, free loopback ports.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct CommandError: Error, CustomStringConvertible {
    public let description: String
}

/// Runs `exe args…` and returns stdout; throws with stderr when the exit status is not 0.
@discardableResult
public func runCommand(_ exe: String, _ args: [String], stdin: [UInt8]? = nil, environment: [String: String]? = nil) throws -> [UInt8] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    try p.run()
    if let stdin { inp.fileHandleForWriting.write(Data(stdin)) }
    try inp.fileHandleForWriting.close()
    // Read both pipes concurrently so a full stderr pipe cannot block the child.
    let errBox = LockedBox<Data>(Data())
    let t = Thread { errBox.set(err.fileHandleForReading.readDataToEndOfFile()) }
    t.start()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    while !errBox.isSet { usleep(1000) }
    guard p.terminationStatus == 0 else {
        throw CommandError(description: "\(exe) \(args.joined(separator: " ")) failed (\(p.terminationStatus)): \(String(decoding: errBox.get(), as: UTF8.self))")
    }
    return [UInt8](stdout)
}

public final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    private(set) var isSet = false
    public init(_ v: T) { value = v }
    public func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    public func set(_ v: T) { lock.lock(); value = v; isSet = true; lock.unlock() }
    public func update<R>(_ f: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return f(&value) }
}

/// Background processes of the tests; all are killed at exit.
public enum BackgroundProcesses {
    nonisolated(unsafe) private static var pids: [pid_t] = []
    nonisolated(unsafe) private static var dirs: [String] = []
    private static let lock = NSLock()
    private static let installed: Bool = {
        atexit {
            BackgroundProcesses.killAll()
        }
        return true
    }()

    public static func start(_ exe: String, _ args: [String], logPath: String) throws -> Process {
        _ = installed
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        try p.run()
        lock.lock(); pids.append(p.processIdentifier); lock.unlock()
        return p
    }

    public static func stop(_ p: Process) {
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        lock.lock(); pids.removeAll { $0 == p.processIdentifier }; lock.unlock()
    }

    /// Removes `dir` at exit (for fixtures shared by all tests, which no test can remove).
    public static func removeAtExit(_ dir: String) {
        _ = installed
        lock.lock(); dirs.append(dir); lock.unlock()
    }

    public static func killAll() {
        lock.lock(); let list = pids, trees = dirs; pids = []; dirs = []; lock.unlock()
        for pid in list { kill(pid, SIGKILL); var st: Int32 = 0; waitpid(pid, &st, 0) }
        for d in trees { removeTree(d) }
    }
}

public func makeTempDir(_ label: String) -> String {
    var template = Array("/tmp/udocker-regtest-\(label)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
    precondition(made != nil, "mkdtemp failed: errno \(errno)")
    return String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

public func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// A loopback port that was free a moment ago.
public func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}

/// Connects to 127.0.0.1:port; returns the fd or -1.
public func connectLoopback(_ port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = port.bigEndian
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    if rc != 0 { close(fd); return -1 }
    return fd
}

public func waitForPort(_ port: UInt16, process: Process, seconds: Double = 15) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let fd = connectLoopback(port)
        if fd >= 0 { close(fd); return }
        if !process.isRunning { throw CommandError(description: "process exited before listening on \(port)") }
        usleep(50_000)
    }
    throw CommandError(description: "nothing listens on \(port) after \(seconds)s")
}

public func writeFile(_ path: String, _ text: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}
