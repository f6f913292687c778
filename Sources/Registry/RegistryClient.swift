// A client for one registry (Docker Registry HTTP API v2 / OCI distribution): authenticated requests.
// Manifests, blobs, listings and uploads are in the extensions of the other files.
import CAS

public final class RegistryClient: @unchecked Sendable {
    public let endpoint: RegistryEndpoint
    public let http: HTTPClient
    public let auth: Authenticator

    public init(endpoint: RegistryEndpoint, http: HTTPClient = HTTPClient(), auth: Authenticator = Authenticator()) {
        self.endpoint = endpoint
        self.http = http
        self.auth = auth
    }

    public static func pullScope(_ repository: String) -> String { "repository:\(repository):pull" }
    public static func pushScope(_ repository: String) -> String { "repository:\(repository):pull,push" }
    public static let catalogScope = "registry:catalog:*"

    /// Sends a request to `pathOrURL` (a path under the endpoint, or an absolute URL such as an upload
    /// Location), answering a 401 once with Basic or a Bearer token for `scope`. Credentials are only
    /// attached to URLs on the registry's own host.
    func send(_ method: String, _ pathOrURL: String, scope: String, headers: HTTPHeaders = HTTPHeaders(),
              body: HTTPBody = .none, sink: (any BodySink)? = nil) throws -> HTTPResponse {
        let url = pathOrURL.contains("://") ? pathOrURL : endpoint.baseURL + pathOrURL
        let ownHost = authority(of: url) == authority(of: endpoint.baseURL)
        var request = HTTPRequest(method: method, url: url, headers: headers, body: body)
        if ownHost, let a = auth.cached(host: endpoint.host, scope: scope) { request.headers.set("Authorization", a) }
        var response = try http.send(request, sink: sink)
        guard response.status == 401, ownHost else { return response }
        auth.forget(host: endpoint.host, scope: scope)
        let value = try auth.authorize(challengeHeader: response.headers["WWW-Authenticate"], endpoint: endpoint,
                                       scope: scope, http: http)
        request.headers.set("Authorization", value)
        response = try http.send(request, sink: sink)
        if response.status == 401 {
            auth.forget(host: endpoint.host, scope: scope)
            throw RegistryError.unauthorized(registry: endpoint,
                                             hadCredentials: auth.credentials(for: endpoint.host) != nil,
                                             detail: errorSummary(response))
        }
        return response
    }

    /// Turns an unexpected status into the error the user should see.
    func failure(_ response: HTTPResponse, what: String) -> RegistryError {
        switch response.status {
        case 404:
            return .notFound(what: what, registry: endpoint.displayName)
        case 401, 403:
            return .unauthorized(registry: endpoint, hadCredentials: auth.credentials(for: endpoint.host) != nil,
                                 detail: errorSummary(response))
        default:
            return .httpStatus(url: redactURL(response.url), status: response.status, message: errorSummary(response))
        }
    }

    /// Checks that the registry speaks API v2 (and that the credentials, if any, are accepted): GET /v2/.
    public func ping() throws {
        let r = try send("GET", "/v2/", scope: "")
        guard r.status == 200 else { throw failure(r, what: "the /v2/ API") }
    }
}
