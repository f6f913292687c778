// Registry authentication: WWW-Authenticate parsing, Basic auth, and the Bearer token flow with a
// per-scope token cache. Secrets stay in memory here and are never logged.
import Foundation

public struct Credentials: Sendable, Equatable {
    public let username: String
    public let password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    var basicHeader: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

// String(describing:), debug printing and dump() show the username only, so a stray print or a log of
// an error holding credentials never shows the password.
extension Credentials: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "Credentials(username: \(username), password: <redacted>)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["username": username, "password": "<redacted>"]) }
}

/// One challenge of a WWW-Authenticate header.
public enum AuthChallenge: Equatable, Sendable {
    case bearer(realm: String, service: String?, scope: String?)
    case basic(realm: String?)

    /// Parses a WWW-Authenticate value (one or more challenges; quoted values may contain commas).
    public static func parse(_ header: String) -> [AuthChallenge] {
        var out: [AuthChallenge] = []
        var scheme: String? = nil
        var params: [String: String] = [:]
        func flush() {
            guard let s = scheme?.lowercased() else { return }
            if s == "bearer", let realm = params["realm"] {
                out.append(.bearer(realm: realm, service: params["service"], scope: params["scope"]))
            } else if s == "basic" {
                out.append(.basic(realm: params["realm"]))
            }
        }
        let chars = Array(header)
        var i = 0
        func skipSpacesAndCommas() { while i < chars.count, chars[i] == " " || chars[i] == "," || chars[i] == "\t" { i += 1 } }
        while i < chars.count {
            skipSpacesAndCommas()
            var token = ""
            while i < chars.count, chars[i] != " ", chars[i] != "=", chars[i] != "," { token.append(chars[i]); i += 1 }
            if token.isEmpty { break }
            if i < chars.count, chars[i] == "=" {
                i += 1
                var value = ""
                if i < chars.count, chars[i] == "\"" {
                    i += 1
                    while i < chars.count, chars[i] != "\"" {
                        if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                        value.append(chars[i]); i += 1
                    }
                    i += 1
                } else {
                    while i < chars.count, chars[i] != ",", chars[i] != " " { value.append(chars[i]); i += 1 }
                }
                params[token.lowercased()] = value
            } else {
                // A bare word starts a new challenge.
                flush()
                scheme = token
                params = [:]
            }
        }
        flush()
        return out
    }
}

/// Holds credentials and tokens for registries. Thread-safe.
public final class Authenticator: @unchecked Sendable {
    private let lock = NSLock()
    private var credentials: [String: Credentials]
    /// "host scope" -> Authorization header value.
    private var cache: [String: String] = [:]

    /// `credentials` maps a registry host[:port] (as in `RegistryEndpoint.host`) to its login.
    public init(credentials: [String: Credentials] = [:]) {
        self.credentials = credentials
    }

    public func setCredentials(_ c: Credentials?, for host: String) {
        lock.lock(); defer { lock.unlock() }
        credentials[host] = c
        cache = cache.filter { !$0.key.hasPrefix(host + " ") }
    }

    func credentials(for host: String) -> Credentials? {
        lock.lock(); defer { lock.unlock() }
        return credentials[host]
    }

    func cached(host: String, scope: String) -> String? {
        lock.lock(); defer { lock.unlock() }
        return cache[host + " " + scope]
    }

    private func store(_ value: String, host: String, scope: String) {
        lock.lock(); defer { lock.unlock() }
        cache[host + " " + scope] = value
    }

    func forget(host: String, scope: String) {
        lock.lock(); defer { lock.unlock() }
        cache[host + " " + scope] = nil
    }

    /// Answers a 401: returns the Authorization header to retry with, or throws what the user must do.
    func authorize(challengeHeader: String?, endpoint: RegistryEndpoint, scope: String, http: HTTPClient) throws -> String {
        let challenges = AuthChallenge.parse(challengeHeader ?? "")
        let creds = credentials(for: endpoint.host)
        for ch in challenges {
            if case .bearer(let realm, let service, let challengeScope) = ch {
                // The registry's own scope is authoritative (it may name actions we did not think of).
                let value = try fetchToken(realm: realm, service: service, scope: challengeScope ?? scope,
                                           credentials: creds, endpoint: endpoint, http: http)
                store(value, host: endpoint.host, scope: scope)
                return value
            }
        }
        if challenges.contains(where: { if case .basic = $0 { return true } else { return false } }) || challenges.isEmpty {
            guard let creds else { throw RegistryError.authenticationRequired(registry: endpoint) }
            store(creds.basicHeader, host: endpoint.host, scope: scope)
            return creds.basicHeader
        }
        throw RegistryError.authenticationRequired(registry: endpoint)
    }

    private func fetchToken(realm: String, service: String?, scope: String, credentials: Credentials?,
                            endpoint: RegistryEndpoint, http: HTTPClient) throws -> String {
        guard realm.hasPrefix("https://") || realm.hasPrefix("http://") else {
            throw RegistryError.tokenFailure(realm: realm, detail: "the registry gave a token realm that is not an http(s) URL")
        }
        var query: [String] = []
        if let service { query.append("service=" + percentEncode(service)) }
        if !scope.isEmpty { query.append("scope=" + percentEncode(scope)) }
        let url = realm + (query.isEmpty ? "" : (realm.contains("?") ? "&" : "?") + query.joined(separator: "&"))
        var headers = HTTPHeaders([("Accept", "application/json")])
        if let credentials { headers.add("Authorization", credentials.basicHeader) }
        let response = try http.send(HTTPRequest(url: url, headers: headers))
        if response.status == 401 || response.status == 403 {
            throw RegistryError.unauthorized(registry: endpoint, hadCredentials: credentials != nil,
                                             detail: errorSummary(response))
        }
        guard response.status == 200 else {
            throw RegistryError.tokenFailure(realm: realm, detail: "HTTP \(response.status) \(errorSummary(response))")
        }
        struct TokenAnswer: Decodable { let token: String?; let access_token: String? }
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: Data(response.body)),
              let token = answer.token ?? answer.access_token, !token.isEmpty else {
            throw RegistryError.tokenFailure(realm: realm, detail: "the answer holds no token")
        }
        return "Bearer " + token
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        if (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 46 || b == 95 || b == 126 {
            out.append(Character(UnicodeScalar(b)))
        } else {
            out += String(format: "%%%02X", b)
        }
    }
    return out
}
