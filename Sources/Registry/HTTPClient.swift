// HTTP client on libcurl: retries with exponential backoff, Range resume into a sink, redirects that
// never carry credentials to another host, redacted debug output. Synchronous; `run` hops off the
// Swift concurrency pool for async callers.
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class HTTPClient: @unchecked Sendable {
    public let options: HTTPOptions
    let pool = EasyHandlePool()
    private static let queue = DispatchQueue(label: "udocker.http", attributes: .concurrent)

    public init(options: HTTPOptions = HTTPOptions()) {
        self.options = options
    }

    /// Runs blocking work (any call of this client) on a dispatch thread, so async callers never block
    /// the cooperative pool.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async { cont.resume(with: Result { try work() }) }
        }
    }

    /// Sends `request`, following redirects (dropping Authorization when the host changes) and retrying
    /// 5xx, 429, timeouts and dropped connections with backoff. With a sink, a 200/206 body streams into
    /// it and a retry resumes from `sink.offset` with a Range header. Other statuses are returned.
    public func send(_ request: HTTPRequest, sink: (any BodySink)? = nil) throws -> HTTPResponse {
        var current = request
        var attempt = 0
        var redirects = 0
        var delay = options.backoffSeconds
        while true {
            attempt += 1
            log("> \(current.method) \(redactURL(current.url))" + ((sink?.offset ?? 0) > 0 ? " (resuming at byte \(sink?.offset ?? 0))" : ""))
            for (n, v) in current.headers { log(">   \(n): \(redactHeader(n, v))") }
            let response: HTTPResponse
            do {
                response = try performOnce(current, sink: sink)
            } catch let f as TransferFailure {
                if let e = f.sinkError { throw e }
                log("! \(f.message) (curl error \(f.code))")
                if f.isTLS {
                    let url = redactURL(current.url)
                    // OpenSSL's words for a TLS hello answered by an HTTP server.
                    if f.message.contains("wrong version number") || f.message.contains("packet length too long"),
                       scheme(of: url) == "https", let r = url.range(of: "://") {
                        let rest = url[r.upperBound...]
                        let host = rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)]
                        throw RegistryError.plainHTTP(url: url, http: "http://" + host)
                    }
                    throw RegistryError.tls(url: url, message: f.message)
                }
                if let limit = f.limit {
                    // Asking again only helps a download that was getting somewhere (it resumes).
                    guard f.progressed, attempt < options.maxAttempts else { throw limit }
                    pause(&delay, retryAfter: nil)
                    continue
                }
                guard f.retryable else { throw RegistryError.transport(url: redactURL(current.url), code: f.code, message: f.message) }
                guard attempt < options.maxAttempts else {
                    throw RegistryError.retriesExhausted(url: redactURL(current.url), attempts: attempt, last: f.message)
                }
                pause(&delay, retryAfter: nil)
                continue
            }
            log("< \(response.status) \(redactURL(response.url))")
            for (n, v) in response.headers { log("<   \(n): \(redactHeader(n, v))") }

            if [301, 302, 303, 307, 308].contains(response.status), let location = response.headers["Location"] {
                redirects += 1
                guard redirects <= options.maxRedirects else { throw RegistryError.tooManyRedirects(redactURL(request.url)) }
                guard let next = resolveURL(location, against: current.url) else {
                    throw RegistryError.httpStatus(url: redactURL(current.url), status: response.status, message: "bad redirect target")
                }
                if authority(of: next) != authority(of: current.url) || scheme(of: next) != scheme(of: current.url) {
                    current.headers.remove("Authorization")
                }
                if response.status == 303 || ((response.status == 301 || response.status == 302) && current.method == "POST") {
                    current.method = "GET"
                    current.body = .none
                }
                current.url = next
                attempt -= 1
                continue
            }
            if response.status >= 500 || response.status == 429 {
                guard attempt < options.maxAttempts else {
                    throw RegistryError.retriesExhausted(url: redactURL(current.url), attempts: attempt,
                                                         last: "HTTP \(response.status) \(errorSummary(response))")
                }
                pause(&delay, retryAfter: response.headers["Retry-After"].flatMap { Double($0) })
                continue
            }
            return response
        }
    }

    private func pause(_ delay: inout Double, retryAfter: Double?) {
        let wait = min(retryAfter ?? delay, options.maxBackoffSeconds)
        log("! retrying in \(wait)s")
        if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
        delay = min(delay * 2, options.maxBackoffSeconds)
    }

    func log(_ line: @autoclosure () -> String) {
        options.debug?(line())
    }
}

/// Header values that carry secrets are never shown.
func redactHeader(_ name: String, _ value: String) -> String {
    switch name.lowercased() {
    case "authorization", "proxy-authorization", "cookie", "set-cookie":
        let kind = value.split(separator: " ").first.map(String.init) ?? ""
        return kind.isEmpty ? "<redacted>" : "\(kind) <redacted>"
    default:
        return value
    }
}

/// A short text of a registry error answer: the "errors" messages of its JSON, or its first line.
func errorSummary(_ response: HTTPResponse) -> String {
    struct Errors: Decodable {
        struct E: Decodable { let code: String?; let message: String? }
        let errors: [E]?
    }
    if let e = try? JSONDecoder().decode(Errors.self, from: Data(response.body)), let list = e.errors, !list.isEmpty {
        return list.map { [$0.code, $0.message].compactMap { $0 }.joined(separator: ": ") }.joined(separator: "; ")
    }
    return String(response.bodyText.prefix(200).split(separator: "\n").first ?? "")
}

func scheme(of url: String) -> String {
    url.range(of: "://").map { url[..<$0.lowerBound].lowercased() } ?? ""
}

/// host[:port] of an absolute URL, lowercased, with the default port made explicit.
func authority(of url: String) -> String {
    guard let r = url.range(of: "://") else { return "" }
    let rest = url[r.upperBound...]
    var auth = String(rest[..<(rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex)]).lowercased()
    if let at = auth.lastIndex(of: "@") { auth = String(auth[auth.index(after: at)...]) }
    if !auth.contains(":") || auth.hasSuffix("]") { auth += scheme(of: url) == "http" ? ":80" : ":443" }
    return auth
}

/// Resolves a Location header against the URL that produced it.
func resolveURL(_ location: String, against base: String) -> String? {
    if location.contains("://") { return location }
    guard let r = base.range(of: "://") else { return nil }
    let rest = base[r.upperBound...]
    let authEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
    let origin = String(base[..<authEnd])
    if location.hasPrefix("//") { return scheme(of: base) + ":" + location }
    if location.hasPrefix("/") { return origin + location }
    let path = rest[authEnd...].prefix(while: { $0 != "?" && $0 != "#" })
    let dir = path.lastIndex(of: "/").map { String(path[...$0]) } ?? "/"
    return origin + dir + location
}
