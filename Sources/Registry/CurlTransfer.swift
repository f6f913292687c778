// One libcurl easy transfer: sets the options, streams the body to a sink, collects headers.
// Blocking; runs on the caller's thread (never call it from the Swift concurrency pool).
import CCurl
import CCurlShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one transfer attempt when libcurl itself failed (no HTTP status to judge).
struct TransferFailure: Error {
    let code: Int
    var message: String
    /// Error thrown by the sink; it is never retried.
    let sinkError: (any Error)?
    /// The connect's errno (CURLINFO_OS_ERRNO), 0 when unknown.
    var osErrno: Int32 = 0
    /// A download that broke a time limit: the error to show if it is not retried.
    var limit: RegistryError? = nil
    /// The attempt brought bytes the next one resumes after (only then is a broken limit retried).
    var progressed = false

    init(code: Int, message: String, sinkError: (any Error)?, osErrno: Int32 = 0) {
        self.code = code; self.message = message; self.sinkError = sinkError; self.osErrno = osErrno
    }

    /// Nothing listens there (CURLE_COULDNT_CONNECT with ECONNREFUSED): asking again in a few seconds
    /// only delays the error, unlike a timeout or a dropped connection.
    var refused: Bool { code == Int(CURLE_COULDNT_CONNECT.rawValue) && osErrno == ECONNREFUSED }

    var retryable: Bool {
        guard sinkError == nil, !refused else { return false }
        switch code {
        // couldn't connect, partial file, timeout, got nothing, send/recv error, HTTP/2 stream errors
        case 7, 18, 28, 52, 55, 56, 16, 92: return true
        default: return false
        }
    }

    var isTLS: Bool { [35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91].contains(code) }
}

/// State shared with the C callbacks of one transfer.
final class TransferContext {
    let handle: UnsafeMutableRawPointer
    let sink: (any BodySink)?
    let rangeStart: UInt64
    var headers = HTTPHeaders()
    var errorBody: [UInt8] = []
    var sinkError: (any Error)? = nil
    var decidedRoute = false
    var toSink = false
    var bodyData: [UInt8] = []
    var upload: UploadSource? = nil
    /// Bytes of an answer kept in memory at most; past it the transfer stops (`overCap`).
    let cap: Int
    var overCap = false

    init(handle: UnsafeMutableRawPointer, sink: (any BodySink)?, rangeStart: UInt64, cap: Int) {
        self.handle = handle
        self.sink = sink
        self.rangeStart = rangeStart
        self.cap = cap
    }

    var status: Int {
        var code = 0
        _ = ud_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// Decides, at the first body byte, whether the body is content (to the sink) or an error text.
    func route() throws {
        decidedRoute = true
        let s = status
        guard let sink, s == 200 || s == 206 else {
            // An announced size past the cap stops the transfer before its first byte is kept.
            if let length = headers["Content-Length"].flatMap({ Int($0) }), length > cap { overCap = true }
            return
        }
        toSink = true
        if s == 200 && sink.offset > 0 {
            try sink.restart()
        } else if s == 206 {
            // "bytes START-END/TOTAL": the server must resume exactly where we stopped.
            let cr = headers["Content-Range"] ?? ""
            let start = cr.split(separator: " ").dropFirst().first?.split(separator: "-").first.flatMap { UInt64($0) }
            guard start == sink.offset else {
                throw RegistryError.sink("the server resumed at '\(cr)' instead of byte \(sink.offset)")
            }
        }
    }
}

/// Feeds a request body to libcurl's read callback.
final class UploadSource {
    private let bytes: [UInt8]
    private var position = 0
    private var fd: Int32 = -1
    private var remaining: UInt64 = 0

    init(body: HTTPBody) throws {
        switch body {
        case .none:
            bytes = []
        case .bytes(let b):
            bytes = b
        case .file(let path, let offset, let length):
            bytes = []
            fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RegistryError.uploadFailed("cannot open \(path): \(String(cString: strerror(errno)))") }
            if lseek(fd, off_t(offset), SEEK_SET) < 0 {
                close(fd)
                throw RegistryError.uploadFailed("cannot seek in \(path)")
            }
            remaining = length
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    func read(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        if fd >= 0 {
            let want = Int(min(UInt64(capacity), remaining))
            if want == 0 { return 0 }
            let n = Glibc.read(fd, buffer, want)
            if n < 0 { return Int(CURL_READFUNC_ABORT) }
            remaining -= UInt64(n)
            return n
        }
        let n = min(capacity, bytes.count - position)
        if n > 0 {
            bytes.withUnsafeBytes { src in
                if let base = src.baseAddress { buffer.copyMemory(from: base + position, byteCount: n) }
            }
            position += n
        }
        return n
    }
}

private let writeCallback: ud_curl_data_cb = { data, size, count, user in
    guard let user, let data else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    do {
        if !ctx.decidedRoute { try ctx.route() }
        let chunk = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: n)
        if ctx.toSink, let sink = ctx.sink {
            try sink.write(chunk)
        } else {
            // Returning short makes libcurl stop reading: nothing past the cap is received.
            if ctx.overCap || ctx.errorBody.count + n > ctx.cap { ctx.overCap = true; return 0 }
            ctx.errorBody.append(contentsOf: chunk)
        }
        return n
    } catch {
        ctx.sinkError = error
        return 0
    }
}

private let headerCallback: ud_curl_data_cb = { data, size, count, user in
    guard let user, let data else { return 0 }
    let ctx = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
    let n = size * count
    let line = String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: n), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        // A new status line (after 100 Continue or a proxy's CONNECT answer) starts a new header block.
        ctx.headers = HTTPHeaders()
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces)
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        ctx.headers.add(name, value)
    }
    return n
}

private let readCallback: ud_curl_data_cb = { data, size, count, user in
    guard let user, let data else { return Int(CURL_READFUNC_ABORT) }
    let ctx = Unmanaged<TransferContext>.fromOpaque(user).takeUnretainedValue()
    return ctx.upload?.read(into: UnsafeMutableRawPointer(data), capacity: size * count) ?? 0
}

/// Idle easy handles, so connections (kept in each handle's cache) are reused across requests.
final class EasyHandlePool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [UnsafeMutableRawPointer] = []

    static let globalInit: Bool = { ud_curl_global_init() == 0 }()

    func take() throws -> UnsafeMutableRawPointer {
        guard EasyHandlePool.globalInit else { throw RegistryError.transport(url: "", code: 2, message: "libcurl failed to initialise") }
        lock.lock()
        let h = idle.popLast()
        lock.unlock()
        if let h {
            curl_easy_reset(h)
            return h
        }
        guard let h = curl_easy_init() else { throw RegistryError.transport(url: "", code: 2, message: "libcurl failed to create a handle") }
        return h
    }

    func give(_ h: UnsafeMutableRawPointer) {
        lock.lock()
        if idle.count < 16 { idle.append(h); lock.unlock() } else { lock.unlock(); curl_easy_cleanup(h) }
    }

    deinit { for h in idle { curl_easy_cleanup(h) } }
}

extension HTTPClient {
    /// Runs one request with libcurl: no redirect following, no retry. Throws `TransferFailure` when
    /// libcurl fails, RegistryError for setup problems.
    func performOnce(_ request: HTTPRequest, sink: (any BodySink)?) throws -> HTTPResponse {
        let h = try pool.take()
        defer { pool.give(h) }
        let ctx = TransferContext(handle: h, sink: sink, rangeStart: sink?.offset ?? 0, cap: options.maxDocumentBytes)
        let user = Unmanaged.passUnretained(ctx).toOpaque()
        var list: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(list) }
        var errbuf = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)

        var rc = CURLE_OK
        func set(_ r: CURLcode) { if rc == CURLE_OK { rc = r } }
        set(ud_curl_setopt_str(h, CURLOPT_URL, request.url))
        set(ud_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        set(ud_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
        set(ud_curl_setopt_str(h, CURLOPT_USERAGENT, options.userAgent))
        set(ud_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT, options.connectTimeoutSeconds))
        // Blob downloads and uploads get udocker's download_timeout and a progress deadline; every
        // other request (an answer read into memory) must be over, headers and body, within `timeout`.
        let bulk = sink != nil || (request.body.length ?? 0) > 65536
        if bulk {
            set(ud_curl_setopt_long(h, CURLOPT_TIMEOUT, options.downloadTimeoutSeconds))
            set(ud_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimit))
            set(ud_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, options.lowSpeedSeconds))
        } else {
            set(ud_curl_setopt_long(h, CURLOPT_TIMEOUT, options.timeoutSeconds))
        }
        set(ud_curl_setopt_str(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(ud_curl_setopt_str(h, CURLOPT_ACCEPT_ENCODING, "identity"))
        if options.insecure {
            set(ud_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 0))
            set(ud_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 0))
        } else {
            set(ud_curl_setopt_long(h, CURLOPT_SSL_VERIFYPEER, 1))
            set(ud_curl_setopt_long(h, CURLOPT_SSL_VERIFYHOST, 2))
        }
        if let ca = options.caFile { set(ud_curl_setopt_str(h, CURLOPT_CAINFO, ca)) }
        if let p = options.proxy {
            set(ud_curl_setopt_str(h, CURLOPT_PROXY, p))
            if let np = options.noProxy { set(ud_curl_setopt_str(h, CURLOPT_NOPROXY, np)) }
        }
        errbuf.withUnsafeMutableBytes { set(ud_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, $0.baseAddress)) }

        var headers = request.headers
        if let sink, sink.offset > 0 { headers.set("Range", "bytes=\(sink.offset)-") }
        // libcurl would otherwise add "Expect: 100-continue" and wait on uploads.
        if request.body.length != nil { headers.set("Expect", "") }
        for (name, value) in headers {
            list = curl_slist_append(list, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        set(ud_curl_setopt_slist(h, CURLOPT_HTTPHEADER, list))

        switch request.method {
        case "GET": break
        case "HEAD": set(ud_curl_setopt_long(h, CURLOPT_NOBODY, 1))
        default: set(ud_curl_setopt_str(h, CURLOPT_CUSTOMREQUEST, request.method))
        }
        if let length = request.body.length {
            ctx.upload = try UploadSource(body: request.body)
            set(ud_curl_setopt_long(h, CURLOPT_UPLOAD, 1))
            set(ud_curl_setopt_off(h, CURLOPT_INFILESIZE_LARGE, Int64(length)))
            set(ud_curl_set_read(h, readCallback, user))
            // CURLOPT_UPLOAD implies PUT; the custom request above keeps POST/PATCH.
        } else if request.method == "POST" || request.method == "PUT" || request.method == "PATCH" {
            set(ud_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, 0))
            set(ud_curl_setopt_str(h, CURLOPT_COPYPOSTFIELDS, ""))
        }
        set(ud_curl_set_write(h, writeCallback, user))
        set(ud_curl_set_header(h, headerCallback, user))
        guard rc == CURLE_OK else {
            throw RegistryError.transport(url: redactURL(request.url), code: Int(rc.rawValue), message: String(cString: curl_easy_strerror(rc)))
        }

        let started = DispatchTime.now().uptimeNanoseconds
        let result = withExtendedLifetime(ctx) { curl_easy_perform(h) }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        // The error buffer pointer must not outlive this function's array.
        _ = ud_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, nil)
        if let e = ctx.sinkError { throw TransferFailure(code: Int(CURLE_WRITE_ERROR.rawValue), message: "\(e)", sinkError: e) }
        if ctx.overCap {
            throw RegistryError.limitExceeded(
                url: redactURL(request.url),
                what: "the answer is larger than \(options.maxDocumentBytes) bytes, the most udocker reads for a manifest, index, config or token",
                key: "max_document_size")
        }
        if result != CURLE_OK {
            var msg = String(decoding: errbuf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if msg.isEmpty { msg = String(cString: curl_easy_strerror(result)) }
            var osErrno = 0
            _ = ud_curl_getinfo_long(h, CURLINFO_OS_ERRNO, &osErrno)
            var failure = TransferFailure(code: Int(result.rawValue), message: msg, sinkError: nil,
                                          osErrno: Int32(truncatingIfNeeded: osErrno))
            if failure.refused { failure.message += " (connection refused: nothing listens there)" }
            // A timeout once connected is a limit the registry broke, not a network hiccup.
            if result == CURLE_OPERATION_TIMEDOUT && !msg.lowercased().contains("connect") {
                let url = redactURL(request.url)
                guard bulk else {
                    throw RegistryError.limitExceeded(
                        url: url, what: "no complete answer (headers and body) within \(options.timeoutSeconds) s", key: "timeout")
                }
                failure.progressed = (sink?.offset ?? 0) > ctx.rangeStart
                failure.limit = elapsed + 0.5 >= Double(options.downloadTimeoutSeconds)
                    ? .limitExceeded(url: url, what: "the transfer took longer than \(options.downloadTimeoutSeconds) s", key: "download_timeout")
                    : .limitExceeded(url: url, what: "less than \(options.lowSpeedLimit) bytes/s (download_low_speed_limit) came for \(options.lowSpeedSeconds) s",
                                     key: "download_low_speed_time")
            }
            throw failure
        }
        return HTTPResponse(status: ctx.status, headers: ctx.headers, body: ctx.errorBody, url: request.url)
    }
}

/// Removes user:password@ from a URL before it is shown.
func redactURL(_ url: String) -> String {
    guard let schemeEnd = url.range(of: "://") else { return url }
    let afterScheme = url[schemeEnd.upperBound...]
    let authorityEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
    guard let at = afterScheme[..<authorityEnd].lastIndex(of: "@") else { return url }
    return String(url[..<schemeEnd.upperBound]) + "***@" + String(afterScheme[afterScheme.index(after: at)...])
}
