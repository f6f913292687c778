// RegistrySync through its Runtime API (the sync verb reaches it once the CLI is wired): images of one
// repository to a registry namespace and back into an empty one with the same digests, a second sync
// sending nothing, dry runs, the naming rule, unknown names and a registry that is not there.
import Testing
import CAS
import Foundation
import Registry
import TestSupport
@testable import Runtime

/// A repository in a temp dir with its own HOME, whose default registry is `registry`.
final class SyncRepo {
    let tmp: String
    let env: [String: String]
    var dir: String { tmp + "/repo" }

    init(registry: String, extra: [String: String] = [:]) {
        tmp = makeTempDirectory("rsync")
        env = ["UDOCKER_DIR": tmp + "/repo", "HOME": tmp, "UDOCKER_REGISTRY": registry, "UDOCKER_NOSYSCONF": "1"].merging(extra) { $1 }
    }
    deinit { try? FileIO.removeTree(tmp) }

    func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) { runUdocker(args, env: env) }

    func configuration() throws -> Configuration { try Configuration.load(environment: env, systemConfigFile: nil) }

    func repository() throws -> Repository { try Repository.openOrCreate(try configuration()).repository }

    func push(_ names: [String] = [], to r: TestRegistry, port: UInt16? = nil, dryRun: Bool = false) throws -> RegistrySyncResult {
        try RegistrySync.push(repository: try repository(), selection: SyncSelection(names: names),
                              host: port.map { "127.0.0.1:\($0)" } ?? r.hostPort, namespace: "ns",
                              configuration: try configuration(), environment: env, access: RegistrySyncAccess(dryRun: dryRun))
    }

    func pull(_ names: [String] = [], from r: TestRegistry, dryRun: Bool = false) throws -> RegistrySyncResult {
        try RegistrySync.pull(repository: try repository(), host: r.hostPort, namespace: "ns", names: names,
                              configuration: try configuration(), environment: env, access: RegistrySyncAccess(dryRun: dryRun))
    }

    /// Manifest, config and layer digests of every image, by name.
    func images() throws -> [String: [Digest]] {
        let repo = try repository()
        let store = try ImageStore(repository: repo, store: try repo.openStore())
        var out = [String: [Digest]]()
        for i in try store.images() { out[i.name.description] = [i.record.manifestDigest, i.record.configDigest] + i.record.layers.map(\.digest) }
        return out
    }
}

@Suite(.timeLimit(.minutes(3))) struct RegistrySyncTests {
    @Test func imagesGoToANamespaceAndComeBackWithTheirDigests() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let src = SyncRepo(registry: shared.url)
        for tag in ["oci", "zstd"] {
            let p = src.run(["pull", "test/busybox:\(tag)"])
            try #require(p.status == 0, "\(p.stderr)")
        }
        let before = try src.images()
        // The two images share their config: five distinct objects (two layers, a config, two manifests).
        let distinct = Set(before.values.flatMap { $0 }).count

        // A dry run says what would travel and sends nothing.
        let dry = try src.push(to: target, dryRun: true)
        #expect(dry.report.images == 2)
        #expect(dry.report.objectsSent == distinct && dry.report.objectsPresent == 6 - distinct, "\(dry)")
        #expect(target.manifestRepositories().isEmpty)

        let first = try src.push(to: target)
        #expect(first.items.map(\.remote) == ["\(target.hostPort)/ns/test/busybox:oci", "\(target.hostPort)/ns/test/busybox:zstd"])
        #expect(first.report.images == 2 && first.report.containers == 0)
        #expect(first.report.objectsSent == distinct && first.report.objectsPresent == 6 - distinct, "\(first)")
        #expect(first.report.objectBytes > 0)
        #expect(target.manifestRepositories() == ["ns/test/busybox"])

        // Other tools see ordinary images.
        let home = makeTempDir("skopeo-home")
        defer { removeTree(home) }
        let inspect = try runCommand("/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(target.hostPort)/ns/test/busybox:oci"],
                                     environment: ["HOME": home, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": home])
        let inspected = try #require(try JSONSerialization.jsonObject(with: Data(inspect)) as? [String: Any])
        #expect(inspected["Digest"] as? String == before["test/busybox:oci"]?.first?.description)

        // A second sync of unchanged images sends nothing: the tags already hold the manifests.
        let again = try src.push(to: target)
        #expect(again.report.objectsSent == 0 && again.report.objectBytes == 0, "\(again)")
        #expect(again.report.objectsPresent == 6)

        // Into an empty repository (another registry configured): the same images, and the store verifies.
        let dst = SyncRepo(registry: "https://registry.invalid")
        let back = try dst.pull(from: target)
        #expect(back.items.map(\.name) == ["test/busybox:oci", "test/busybox:zstd"])
        #expect(back.report.images == 2)
        #expect(back.report.objectsSent == distinct, "\(back)")
        #expect(try dst.images() == before)
        let verify = dst.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let images = dst.run(["images"])
        #expect(images.stdout.contains("test/busybox:oci") && images.stdout.contains("test/busybox:zstd"), "\(images.stdout)")

        // Pulling again brings nothing; a dry run on a third repository counts what would come.
        let twice = try dst.pull(from: target)
        #expect(twice.report.objectsSent == 0 && twice.report.objectsPresent == 6, "\(twice)")
        let third = SyncRepo(registry: "https://registry.invalid")
        let dryBack = try third.pull(["test/busybox:oci"], from: target, dryRun: true)
        #expect(dryBack.report.images == 1 && dryBack.report.objectsSent == 3, "\(dryBack)")
        #expect(try third.images().isEmpty)
    }

    @Test func unknownNamesAndAnAbsentRegistryAreClearErrors() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let src = SyncRepo(registry: shared.url)
        let p = src.run(["pull", "test/busybox:oci"])
        try #require(p.status == 0, "\(p.stderr)")

        #expect(throws: RuntimeError.syncNamesNotFound(["nothing:here"], images: ["test/busybox:oci"])) {
            try src.push(["test/busybox:oci", "nothing:here"], to: target)
        }
        #expect(target.manifestRepositories().isEmpty)

        _ = try src.push(["test/busybox:oci"], to: target)
        let dst = SyncRepo(registry: "https://registry.invalid")
        #expect(throws: RuntimeError.syncRegistryNamesNotFound(["test/busybox:zstd", "gone"], location: "docker://\(target.hostPort)/ns",
                                                            available: ["test/busybox"])) {
            try dst.pull(["test/busybox:oci", "test/busybox:zstd", "gone"], from: target)
        }
        #expect(try dst.images().isEmpty)

        // A port nobody listens on: one error naming the location and what to check.
        let closed = freePort()
        do {
            _ = try src.push(to: target, port: closed)
            Issue.record("a push to a closed port succeeded")
        } catch let e as RuntimeError {
            guard case .syncRegistryFailed(let location, _, let underlying) = e, case .transport = underlying else {
                Issue.record("unexpected error \(e)"); return
            }
            #expect(location == "docker://127.0.0.1:\(closed)/ns")
            #expect(e.description.hasPrefix("sync with docker://127.0.0.1:\(closed)/ns failed while reaching https://127.0.0.1:\(closed): cannot reach"), "\(e)")
        }
    }

    @Test func aTLSRegistryWithAPasswordUsesTheKeystore() throws {
        let shared = try SharedRegistry.get().registry
        let (user, password) = ("syncer", "s3cret-pass")
        let target = try TestRegistry(tls: true, auth: .htpasswd(user: user, password: password))
        defer { target.stop() }
        let src = SyncRepo(registry: shared.url, extra: ["CURL_CA_BUNDLE": target.caFile ?? ""])
        let p = src.run(["pull", "test/busybox:oci"])
        try #require(p.status == 0, "\(p.stderr)")
        let keystore = Keystore(configuration: try src.configuration())
        let access = RegistrySyncAccess(keystore: keystore)
        // No login yet: the registry's own words, naming how to log in.
        #expect(throws: RuntimeError.syncRegistryFailed(location: "docker://\(target.hostPort)/ns", what: "reading ns/test/busybox:oci",
                                                      .authenticationRequired(registry: RegistryEndpoint(scheme: "https", host: target.hostPort)))) {
            try RegistrySync.push(repository: try src.repository(), selection: SyncSelection(), host: target.hostPort, namespace: "ns",
                                  configuration: try src.configuration(), environment: src.env, access: access)
        }
        let login = runUdocker(["login", "--username=\(user)", "--password-stdin", "--registry=\(target.url)"], env: src.env,
                               stdin: Array(password.utf8))
        try #require(login.status == 0, "\(login.stderr)")
        let pushed = try RegistrySync.push(repository: try src.repository(), selection: SyncSelection(), host: target.hostPort, namespace: "ns",
                                           configuration: try src.configuration(), environment: src.env, access: access)
        #expect(pushed.report.images == 1 && pushed.report.objectsSent == 3, "\(pushed)")
        let back = try RegistrySync.pull(repository: try src.repository(), host: target.hostPort, namespace: "ns", names: [],
                                         configuration: try src.configuration(), environment: src.env, access: access)
        // ns/test/busybox:oci comes back as test/busybox:oci, which is here with that manifest already.
        #expect(back.report.images == 1 && back.report.objectsSent == 0, "\(back)")
    }

    @Test func namingRuleRoundTrips() throws {
        let n = try RegistryNaming(namespace: "team/ns")
        let cases: [(ImageName, String, String)] = [
            (ImageName(name: "test/busybox", tag: "oci"), "team/ns/test/busybox", "oci"),
            (ImageName(name: "busybox", tag: "latest"), "team/ns/busybox", "latest"),
            (ImageName(name: "127.0.0.1:5000/a/b", tag: "v1"), "team/ns/127.0.0.1__5000/a/b", "v1"),
            (ImageName(name: "quay.io/org/app", tag: "1.0"), "team/ns/quay.io/org/app", "1.0"),
            (ImageName(name: "x", tag: "@sha256:" + String(repeating: "ab", count: 32)), "team/ns/x", "sha256-" + String(repeating: "ab", count: 32)),
        ]
        for (local, repository, tag) in cases {
            let r = try n.remote(image: local)
            #expect(r.repository == repository && r.tag == tag)
            #expect(n.local(repository: repository, tag: tag) == local)
        }
        #expect(try n.remote(container: "0f1e-id", names: ["web"]) == "team/ns/container-web")
        #expect(try n.remote(container: "0f1e-id", names: ["Web App"]) == "team/ns/container-0f1e-id")
        #expect(n.local(repository: "other/x", tag: "latest") == nil)
        #expect(throws: RuntimeError.self) { try RegistryNaming(namespace: "Bad/NS") }
        let conf = try Configuration.load(environment: ["HOME": "/nonexistent", "UDOCKER_NOSYSCONF": "1"], systemConfigFile: nil)
        #expect(try RegistryNaming.endpoint(host: "127.0.0.1:5000", registryOption: nil, configuration: conf).scheme == "https")
        #expect(RegistryNaming.isLoopback("127.0.0.1:5000") && RegistryNaming.isLoopback("localhost") && RegistryNaming.isLoopback("[::1]:5000"))
        #expect(!RegistryNaming.isLoopback("127.example.org") && !RegistryNaming.isLoopback("10.0.0.1:5000"))
        #expect(try RegistryNaming.endpoint(host: "registry.example.org", registryOption: nil, configuration: conf).scheme == "https")
        #expect(try RegistryNaming.endpoint(host: "reg:5000", registryOption: "http://reg:5000", configuration: conf).baseURL == "http://reg:5000")
    }
}

/// Containers through the registry with stand-in delta and arrival hooks (a hand-made delta layer),
/// so the registry side is checked on its own: the container image other tools see, its annotation,
/// the image and delta arriving, a second push sending nothing.
@Suite(.timeLimit(.minutes(3))) struct RegistrySyncContainerImageTests {
    final class Landed: @unchecked Sendable {
        // Written by the land hook on the test's own thread only (pull is synchronous).
        var containers: [SyncContainer] = []
    }

    @Test func aContainerTravelsAsAnImageOthersCanRead() throws {
        let shared = try SharedRegistry.get().registry
        let target = try TestRegistry()
        defer { target.stop() }
        let src = SyncRepo(registry: shared.url)
        let p = src.run(["pull", "test/busybox:oci"])
        try #require(p.status == 0, "\(p.stderr)")
        let create = src.run(["create", "--name=web", "test/busybox:oci"])
        try #require(create.status == 0, "\(create.stderr)")
        let id = create.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // The container's own settings (container.json) become the image's.
        let jsonPath = src.dir + "/containers/\(id)/container.json"
        var own = try #require(try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(jsonPath))) as? [String: Any])
        var settings = own["config"] as? [String: Any] ?? [:]
        settings["Env"] = ["PATH=/bin", "FROM_CONTAINER=1"]
        settings["WorkingDir"] = "/srv"
        own["config"] = settings
        try Data(try JSONSerialization.data(withJSONObject: own)).write(to: URL(fileURLWithPath: jsonPath))

        // The delta: an added file and a whiteout, as a plain tar.
        let work = makeTempDir("delta")
        defer { removeTree(work) }
        try FileManager.default.createDirectory(atPath: work + "/d/bin", withIntermediateDirectories: true)
        try writeFile(work + "/d/added.txt", "hello from the container\n")
        try writeFile(work + "/d/bin/.wh.sh", "")
        _ = try runCommand("/bin/tar", ["-C", work + "/d", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "-cf", work + "/delta.tar", "added.txt", "bin"])
        let repo = try src.repository()
        let base = try #require(try ImageStore(repository: repo, store: try repo.openStore()).image(named: "test/busybox:oci"))
        let hooks = ContainerHooks(prepare: { repository, info in
            let store = try repository.openStore()
            let rec = try store.ingest(fileAt: work + "/delta.tar", mediaType: MediaType.ociLayer)
            let json = try FileIO.readFile(info.directory + "/container.json")
            return SyncContainer(id: info.id, names: info.names, image: info.image, imageManifest: base.record.manifestDigest,
                                 delta: SyncObject(digest: rec.digest, size: Int64(rec.size), mediaType: MediaType.ociLayer),
                                 containerJSON: Data(json), materialize: "auto", execmode: "P1", protected: false)
        }, land: { _, _, _ in })

        let pushed = try RegistrySync.push(repository: repo, selection: SyncSelection(names: ["web"]), host: target.hostPort,
                                           namespace: "ns", configuration: try src.configuration(), environment: src.env,
                                           access: RegistrySyncAccess(), hooks: hooks)
        // The container's image travels with it, under its own name.
        #expect(pushed.items.map(\.kind) == [.image, .container])
        #expect(pushed.items.map(\.remote) == ["\(target.hostPort)/ns/test/busybox:oci", "\(target.hostPort)/ns/container-web:latest"])
        #expect(pushed.report.images == 1 && pushed.report.containers == 1)
        // The container sends its delta, config and manifest; the image's layer is mounted or there.
        #expect(pushed.items[1].objectsSent == 3 && pushed.items[1].objectsPresent == 1, "\(pushed.items[1])")

        let home = makeTempDir("skopeo-home")
        defer { removeTree(home) }
        let skopeoEnv = ["HOME": home, "PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": home]
        let inspect = try runCommand("/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(target.hostPort)/ns/container-web:latest"],
                                     environment: skopeoEnv)
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(inspect)) as? [String: Any])
        #expect((shown["Layers"] as? [String])?.count == base.record.layers.count + 1)
        #expect((shown["Labels"] as? [String: String])?[RegistryContainerImage.idLabel] == id)
        #expect(shown["Env"] as? [String] == ["PATH=/bin", "FROM_CONTAINER=1"])
        let config = try runCommand("/usr/bin/skopeo", ["inspect", "--config", "--tls-verify=false", "docker://\(target.hostPort)/ns/container-web:latest"],
                                    environment: skopeoEnv)
        let configShown = try #require(try JSONSerialization.jsonObject(with: Data(config)) as? [String: Any])
        #expect((configShown["config"] as? [String: Any])?["WorkingDir"] as? String == "/srv")
        #expect(((configShown["rootfs"] as? [String: Any])?["diff_ids"] as? [String])?.count == base.record.layers.count + 1)
        let raw = try runCommand("/usr/bin/skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(target.hostPort)/ns/container-web:latest"],
                                 environment: skopeoEnv)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any])
        let annotations = try #require(manifest["annotations"] as? [String: String])
        let carried = try JSONDecoder().decode(SyncContainer.self, from: Data(try #require(annotations[RegistrySync.containerAnnotation]).utf8))
        #expect(carried.id == id && carried.names == ["web"] && carried.image == "test/busybox:oci")
        #expect(annotations["org.opencontainers.image.base.digest"] == base.record.manifestDigest.description)
        // skopeo copies it like any image (what podman and Apptainer do when they pull).
        _ = try runCommand("/usr/bin/skopeo", ["--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                                               "docker://\(target.hostPort)/ns/container-web:latest", "oci:\(work)/copied:web"],
                           environment: skopeoEnv)

        // Unchanged, it sends nothing the second time.
        let again = try RegistrySync.push(repository: repo, selection: SyncSelection(names: ["web"]), host: target.hostPort,
                                          namespace: "ns", configuration: try src.configuration(), environment: src.env,
                                          access: RegistrySyncAccess(), hooks: hooks)
        #expect(again.report.objectsSent == 0 && again.report.objectBytes == 0, "\(again)")

        // Back into an empty repository: the image is recorded, the delta is in the store, then it lands.
        let dst = SyncRepo(registry: "https://registry.invalid")
        let landed = Landed()
        let arrival = ContainerHooks(prepare: hooks.prepare, land: { repository, c, _ throws in
            let store = try repository.openStore()
            #expect(store.hasBlob(c.delta.digest))
            landed.containers.append(c)
        })
        let back = try RegistrySync.pull(repository: try dst.repository(), host: target.hostPort, namespace: "ns", names: ["web"],
                                         options: SyncArrivalOptions(), configuration: try dst.configuration(), environment: dst.env,
                                         access: RegistrySyncAccess(), hooks: arrival)
        #expect(back.report.containers == 1 && back.report.images == 0)
        #expect(landed.containers == [carried])
        #expect(try dst.images()["test/busybox:oci"] == src.images()["test/busybox:oci"])
        let verify = dst.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
