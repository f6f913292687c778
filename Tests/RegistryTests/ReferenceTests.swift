// Image reference parsing (Docker's rules), registry endpoints, WWW-Authenticate and Link parsing.
import TestSupport
import CAS
import Testing
@testable import Registry

@Suite struct ReferenceTests {
    static let hex = String(repeating: "ab", count: 32)

    @Test(arguments: [
        ("ubuntu", "https://registry-1.docker.io", "library/ubuntu", "latest"),
        ("ubuntu:22.04", "https://registry-1.docker.io", "library/ubuntu", "22.04"),
        ("docker.io/ubuntu", "https://registry-1.docker.io", "library/ubuntu", "latest"),
        ("index.docker.io/library/ubuntu:x", "https://registry-1.docker.io", "library/ubuntu", "x"),
        ("biocontainers/samtools:v1", "https://registry-1.docker.io", "biocontainers/samtools", "v1"),
        ("quay.io/biocontainers/samtools:1.9--h", "https://quay.io", "biocontainers/samtools", "1.9--h"),
        ("localhost/foo", "https://localhost", "foo", "latest"),
        ("localhost:5000/foo/bar:t", "https://localhost:5000", "foo/bar", "t"),
        ("127.0.0.1:5000/a_b/c__d-e.f:tag", "https://127.0.0.1:5000", "a_b/c__d-e.f", "tag"),
        ("myhost:5000/x", "https://myhost:5000", "x", "latest"),
        ("ubuntu@sha256:\(hex)", "https://registry-1.docker.io", "library/ubuntu", "sha256:\(hex)"),
        ("ubuntu:22.04@sha256:\(hex)", "https://registry-1.docker.io", "library/ubuntu", "sha256:\(hex)"),
    ])
    func parses(_ text: String, _ base: String, _ repo: String, _ reference: String) throws {
        let r = try ImageReference.parse(text)
        #expect(r.registry.baseURL == base)
        #expect(r.repository == repo)
        #expect(r.reference == reference)
    }

    @Test(arguments: [
        ("", "empty"), ("Ubuntu", "lowercase"), ("library/Ubuntu", "lowercase"), ("ubuntu:", "tag"),
        ("ubuntu:-x", "tag"), ("ubuntu@sha256:abc", "digest"), ("a//b", "component"), ("-a/b", "component"),
        ("a/b-", "component"), ("a..b", "component"), ("has space", "spaces"), ("ubuntu@md5:\(hex)", "digest"),
        ("ubuntu:" + String(repeating: "x", count: 129), "tag"),
    ])
    func rejects(_ text: String, _ mention: String) {
        do {
            _ = try ImageReference.parse(text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect("\(error)".contains(mention), "\(error)")
            #expect("\(error)".contains("[HOST[:PORT]/]NAME"))
        }
    }

    @Test func registryOverrideAndEnvironment() throws {
        let a = try ImageReference.parse("foo/bar:1", registryOverride: "http://127.0.0.1:5000/")
        #expect(a.registry.baseURL == "http://127.0.0.1:5000")
        #expect(a.repository == "foo/bar")
        // A registry given apart from the name is a Docker Hub mirror for one-component names (udocker 1.3's
        // rule); a host spelled in the name is not.
        let single = try ImageReference.parse("bar", registryOverride: "https://quay.io")
        #expect(single.repository == "library/bar" && single.registry.baseURL == "https://quay.io")
        let env = try ImageReference.parse("bar:1", environment: ["UDOCKER_REGISTRY": "http://reg.example:8080"])
        #expect(env.registry.baseURL == "http://reg.example:8080" && env.repository == "library/bar")
        #expect(try ImageReference.parse("library/bar", registryOverride: "http://reg.example:8080").repository == "library/bar")
        #expect(try ImageReference.parse("reg.example:8080/bar", registryOverride: "http://reg.example:8080").repository == "bar")
        #expect(try ImageReference.parse("docker.io/bar").repository == "library/bar")
        let hubByURL = try ImageReference.parse("bar", registryOverride: "https://index.docker.io/v1/")
        #expect(hubByURL.repository == "library/bar" && hubByURL.registry.isDockerHub)
        // An explicit host in the name wins over the override.
        let named = try ImageReference.parse("quay.io/x/y", registryOverride: "http://127.0.0.1:5000")
        #expect(named.registry.baseURL == "https://quay.io")
        #expect(throws: RegistryError.self) { try RegistryEndpoint(url: "ftp://x") }
        #expect(throws: RegistryError.self) { try RegistryEndpoint(url: "http://a b") }
        #expect(ImageReference(registry: .dockerHub, repository: "library/x", tag: nil, digest: nil).description == "docker.io/library/x:latest")
    }

    @Test func wwwAuthenticate() {
        let h = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#
        #expect(AuthChallenge.parse(h) == [.bearer(realm: "https://auth.docker.io/token", service: "registry.docker.io",
                                                   scope: "repository:library/ubuntu:pull,push")])
        #expect(AuthChallenge.parse(#"Basic realm="Registry Realm""#) == [.basic(realm: "Registry Realm")])
        #expect(AuthChallenge.parse("") == [])
    }

    @Test func linkHeader() {
        #expect(RegistryClient.nextLink([#"</v2/_catalog?last=b&n=2>; rel="next""#]) == "/v2/_catalog?last=b&n=2")
        #expect(RegistryClient.nextLink([#"</x>; rel="prev""#]) == nil)
    }

    @Test func redirectsAndRedaction() {
        #expect(resolveURL("/b?x=1", against: "https://h:5000/a/c") == "https://h:5000/b?x=1")
        #expect(resolveURL("https://s3.example/o", against: "https://h/a") == "https://s3.example/o")
        #expect(authority(of: "https://H.example/x") == "h.example:443")
        #expect(authority(of: "http://h.example:80/x") == authority(of: "http://h.example/y"))
        #expect(redactHeader("Authorization", "Bearer abc.def") == "Bearer <redacted>")
        #expect(redactURL("https://u:secret@h/x") == "https://***@h/x")
    }
}
