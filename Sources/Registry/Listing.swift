// Listing: tags of a repository and the v2 _catalog, both following `Link: <…>; rel="next"` pages;
// and search (Docker Hub's v1 search API, falling back to filtering the _catalog).
import Foundation

public struct SearchResult: Sendable, Equatable, Decodable {
    public let name: String
    public let description: String?
    public let starCount: Int?
    public let isOfficial: Bool?
    public let isAutomated: Bool?

    enum CodingKeys: String, CodingKey {
        case name, description
        case starCount = "star_count"
        case isOfficial = "is_official"
        case isAutomated = "is_automated"
    }

    public init(name: String) {
        self.name = name
        description = nil
        starCount = nil
        isOfficial = nil
        isAutomated = nil
    }
}

extension RegistryClient {
    /// All tags of `repository`, following pagination; `pageSize` is the `n` asked per page.
    public func listTags(_ repository: String, pageSize: Int = 100) throws -> [String] {
        struct Page: Decodable { let tags: [String]? }
        var out: [String] = []
        try paginate("/v2/\(repository)/tags/list?n=\(pageSize)", scope: Self.pullScope(repository),
                     what: "repository \(repository)") { data in
            out += try JSONDecoder().decode(Page.self, from: data).tags ?? []
        }
        return out
    }

    /// All repositories the registry lists in /v2/_catalog.
    public func catalog(pageSize: Int = 100) throws -> [String] {
        struct Page: Decodable { let repositories: [String]? }
        var out: [String] = []
        try paginate("/v2/_catalog?n=\(pageSize)", scope: Self.catalogScope, what: "the catalog") { data in
            out += try JSONDecoder().decode(Page.self, from: data).repositories ?? []
        }
        return out
    }

    private func paginate(_ first: String, scope: String, what: String, page: (Data) throws -> Void) throws {
        var next: String? = first
        var pages = 0
        while let url = next {
            pages += 1
            guard pages <= 10_000 else { throw RegistryError.badManifest("\(what): more than 10000 pages") }
            let r = try send("GET", url, scope: scope, headers: HTTPHeaders([("Accept", "application/json")]))
            guard r.status == 200 else { throw failure(r, what: what) }
            do { try page(Data(r.body)) } catch {
                throw RegistryError.httpStatus(url: redactURL(r.url), status: r.status, message: "unreadable listing: \(error)")
            }
            next = Self.nextLink(r.headers.values("Link")).flatMap { resolveURL($0, against: r.url) }
        }
    }

    /// The target of a `rel="next"` link, e.g. `</v2/_catalog?last=b&n=2>; rel="next"`.
    static func nextLink(_ values: [String]) -> String? {
        for value in values {
            for part in value.split(separator: ",") {
                let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let target = fields.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
                if fields.dropFirst().contains(where: { $0.replacingOccurrences(of: " ", with: "").lowercased() == "rel=\"next\"" || $0.lowercased() == "rel=next" }) {
                    return String(target.dropFirst().dropLast())
                }
            }
        }
        return nil
    }

    /// Searches `expression`: the v1 search API of `index` (Docker Hub's is https://index.docker.io),
    /// or of this registry when no index is given; when that API is missing, the _catalog entries
    /// containing `expression`.
    public func search(_ expression: String, limit: Int = 25, index: RegistryEndpoint? = nil) throws -> [SearchResult] {
        struct Answer: Decodable { let results: [SearchResult]? }
        let base = index ?? (endpoint.isDockerHub ? RegistryEndpoint(scheme: "https", host: "index.docker.io") : endpoint)
        let url = base.baseURL + "/v1/search?q=\(percentEncode(expression))&n=\(limit)"
        let r = try http.send(HTTPRequest(url: url, headers: HTTPHeaders([("Accept", "application/json")])))
        if r.status == 200, let a = try? JSONDecoder().decode(Answer.self, from: Data(r.body)), let results = a.results {
            return results
        }
        let needle = expression.lowercased()
        return try catalog().filter { needle.isEmpty || $0.lowercased().contains(needle) }.prefix(limit).map { SearchResult(name: $0) }
    }
}
