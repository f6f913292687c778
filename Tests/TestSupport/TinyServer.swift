// A tiny HTTP/1.1 server on a loopback socket for tests: answers requests itself (token server, fake
// endpoints) or proxies them to the registry, optionally failing once (500, or cutting the body).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct TinyRequest: Sendable {
    public let method: String
    public let target: String
    public let headers: [String: String]
    public let head: [UInt8]
    public let body: [UInt8]
}

public enum TinyAction: Sendable {
    case respond(status: Int, headers: [(String, String)], body: [UInt8])
    /// Forward to 127.0.0.1:port; with `cutAfter`, close both sides after that many response bytes.
    case proxy(port: UInt16, cutAfter: Int?)
    /// Writes the answer itself, status line and headers included (a registry that stalls or floods).
    case stream(@Sendable (TinyConnection) -> Void)
}

/// The client side of one connection, for `TinyAction.stream`.
public struct TinyConnection: Sendable {
    let fd: Int32

    /// Sends `bytes`; false once the client has gone.
    public func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    /// Sends `bytes` one at a time, `interval` seconds apart; false once the client has gone.
    public func trickle(_ bytes: [UInt8], interval: Double) -> Bool {
        for b in bytes {
            guard send([b]) else { return false }
            if waitClosed(seconds: interval) { return false }
        }
        return true
    }

    /// Waits until the client closes the connection or `seconds` pass; true when it closed.
    @discardableResult
    public func waitClosed(seconds: Double) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(seconds * 1000)) > 0 else { return false }
        var b: UInt8 = 0
        return recv(fd, &b, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) <= 0
    }
}

public final class TinyServer: @unchecked Sendable {
    public let port: UInt16
    private let listenFD: Int32
    private let handler: @Sendable (TinyRequest) -> TinyAction
    public let requestLog = LockedBox<[String]>([])

    public init(handler: @escaping @Sendable (TinyRequest) -> TinyAction) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let b = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard b == 0, listen(fd, 64) == 0 else { close(fd); throw CommandError(description: "tiny server cannot listen") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        listenFD = fd
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    public func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    private func acceptLoop() {
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR { continue }
                return
            }
            let t = Thread { [self] in serve(c) }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var headEnd: Int? = nil
        while headEnd == nil {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            data += buf[0..<n]
            headEnd = findHeadEnd(data)
        }
        guard let he = headEnd else { return }
        let headText = String(decoding: data[0..<he], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        var headers: [String: String] = [:]
        for l in lines where !l.isEmpty {
            if let c = l.firstIndex(of: ":") {
                headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while data.count - (he + 4) < length {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            data += buf[0..<n]
        }
        let req = TinyRequest(method: requestLine.count > 0 ? String(requestLine[0]) : "",
                              target: requestLine.count > 1 ? String(requestLine[1]) : "",
                              headers: headers, head: Array(data[0..<he]), body: Array(data[(he + 4)...]))
        requestLog.update { $0.append("\(req.method) \(req.target)" + (headers["range"].map { " range=\($0)" } ?? "")) }
        switch handler(req) {
        case .respond(let status, let hdrs, let body):
            var text = "HTTP/1.1 \(status) X\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            for (n, v) in hdrs { text += "\(n): \(v)\r\n" }
            text += "\r\n"
            sendAll(fd, Array(text.utf8) + (req.method == "HEAD" ? [] : body))
        case .stream(let write):
            write(TinyConnection(fd: fd))
        case .proxy(let port, let cutAfter):
            let up = connectLoopback(port)
            guard up >= 0 else { return }
            defer { close(up) }
            // One request per connection: make the registry close after answering.
            var head = String(decoding: req.head, as: UTF8.self).components(separatedBy: "\r\n")
                .filter { !$0.lowercased().hasPrefix("connection:") }
            head.append("Connection: close")
            sendAll(up, Array((head.joined(separator: "\r\n") + "\r\n\r\n").utf8) + req.body)
            var relayed = 0
            while true {
                let n = buf.withUnsafeMutableBytes { recv(up, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                var chunk = Array(buf[0..<n])
                if let cut = cutAfter, relayed + n >= cut {
                    chunk = Array(chunk[0..<(cut - relayed)])
                    sendAll(fd, chunk)
                    shutdown(fd, Int32(SHUT_RDWR))
                    return
                }
                sendAll(fd, chunk)
                relayed += n
            }
        }
    }

    private func findHeadEnd(_ d: [UInt8]) -> Int? {
        guard d.count >= 4 else { return nil }
        for i in 0...(d.count - 4) where d[i] == 13 && d[i + 1] == 10 && d[i + 2] == 13 && d[i + 3] == 10 { return i }
        return nil
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }
}
