// Plain value types of the HTTP layer: requests, responses, case-insensitive headers, options.

/// Response or request headers in order, looked up case-insensitively.
public struct HTTPHeaders: Sendable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name: name, value: value)) }

    public mutating func set(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }

    public mutating func remove(_ name: String) {
        let n = name.lowercased()
        fields.removeAll { $0.name.lowercased() == n }
    }

    public subscript(_ name: String) -> String? {
        let n = name.lowercased()
        return fields.first { $0.name.lowercased() == n }?.value
    }

    public func values(_ name: String) -> [String] {
        let n = name.lowercased()
        return fields.filter { $0.name.lowercased() == n }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

/// What a request sends as its body.
public enum HTTPBody: Sendable {
    case none
    case bytes([UInt8])
    /// `length` bytes of the file at `path` starting at `offset` (for blob uploads without loading them).
    case file(path: String, offset: UInt64, length: UInt64)

    var length: UInt64? {
        switch self {
        case .none: return nil
        case .bytes(let b): return UInt64(b.count)
        case .file(_, _, let n): return n
        }
    }
}

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: HTTPHeaders
    public var body: HTTPBody

    public init(method: String = "GET", url: String, headers: HTTPHeaders = HTTPHeaders(), body: HTTPBody = .none) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    /// The body, unless it went to a sink (then empty). Error bodies are always kept here (capped).
    public var body: [UInt8]
    /// The URL that produced this response, after redirects.
    public var url: String

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// Settings of the HTTP client; defaults suit registry traffic.
public struct HTTPOptions: Sendable {
    /// Skip TLS certificate and host name verification (`--insecure`).
    public var insecure = false
    /// A PEM file of CA certificates to trust instead of the system ones.
    public var caFile: String? = nil
    /// `--httpproxy=URL`. When nil, libcurl reads http_proxy, https_proxy and no_proxy itself.
    public var proxy: String? = nil
    /// Used with `proxy` as the no_proxy list (libcurl ignores the environment once a proxy is set).
    public var noProxy: String? = nil
    /// udocker.conf `ctimeout`: seconds to connect.
    public var connectTimeoutSeconds = 6
    /// udocker.conf `timeout`: seconds for a whole request whose answer is read into memory (manifests,
    /// indexes, tokens, pings, listings), headers included, so a registry trickling them cannot hold it.
    public var timeoutSeconds = 12
    /// udocker.conf `download_timeout`: seconds for one attempt at a blob download (as udocker 1.3).
    public var downloadTimeoutSeconds = 1800
    /// A blob download slower than `lowSpeedLimit` bytes/s for `lowSpeedSeconds` (headers included) is
    /// aborted: udocker.conf `download_low_speed_limit` and `download_low_speed_time`.
    public var lowSpeedLimit = 1000
    public var lowSpeedSeconds = 60
    /// udocker.conf `max_document_size`: bytes of a manifest, index, config or token answer (and of
    /// an error answer) read at most; the request stops at the first byte past it.
    public var maxDocumentBytes = 8 << 20
    /// Attempts per request for 5xx, 429, timeouts and dropped connections (including the first).
    public var maxAttempts = 5
    /// First backoff delay; doubles each retry, capped by `maxBackoffSeconds`.
    public var backoffSeconds = 0.5
    public var maxBackoffSeconds = 10.0
    public var maxRedirects = 10
    public var userAgent = "udocker-swift/0.1"
    /// Receives one line per request, response and retry; secrets are redacted before this is called.
    public var debug: (@Sendable (String) -> Void)? = nil

    public init() {}

    /// Options from `--httpproxy` and the environment (no_proxy/NO_PROXY are used with an explicit proxy).
    public init(httpProxy: String?, insecure: Bool, environment: [String: String]) {
        self.init()
        self.insecure = insecure
        if let p = httpProxy, !p.isEmpty {
            proxy = p
            noProxy = environment["no_proxy"] ?? environment["NO_PROXY"]
        }
    }
}

/// Where a streamed response body goes. The download resumes from `offset` with a Range request after
/// a dropped connection; if the server ignores the Range, `restart()` discards what was written.
public protocol BodySink: AnyObject {
    /// Bytes written so far.
    var offset: UInt64 { get }
    func write(_ chunk: UnsafeRawBufferPointer) throws
    /// Drop everything written so far; the next write is byte 0.
    func restart() throws
}
