// `sync docker://HOST[:PORT]/NAMESPACE` and `sync --from=docker://…`: a registry namespace as the
// go-between of two repositories. Images travel with the existing push and pull (stored bytes, same
// digests); the naming rule is RegistryNaming's.
import CAS
import Foundation
import Registry

/// How the registry is reached and what the caller sees while a registry sync runs.
public struct RegistrySyncAccess: Sendable {
    /// --registry=URL: when it names the location's host, its scheme (http://) is used.
    public var registry: String?
    /// --httpproxy=URL.
    public var httpProxy: String?
    /// Where `login` stored credentials; nil means anonymous.
    public var keystore: Keystore?
    /// --dry-run: say what would travel (the registry is asked what it has), change nothing.
    public var dryRun: Bool
    public var pushProgress: (@Sendable (PushEvent) -> Void)?
    public var pullProgress: (@Sendable (PullEvent) -> Void)?
    /// Called once per image or container when it is done (or, in a dry run, assessed).
    public var item: (@Sendable (RegistrySyncItem) -> Void)?
    /// Receives the HTTP client's debug lines (secrets redacted).
    public var debug: (@Sendable (String) -> Void)?

    public init(registry: String? = nil, httpProxy: String? = nil, keystore: Keystore? = nil, dryRun: Bool = false,
                pushProgress: (@Sendable (PushEvent) -> Void)? = nil, pullProgress: (@Sendable (PullEvent) -> Void)? = nil,
                item: (@Sendable (RegistrySyncItem) -> Void)? = nil, debug: (@Sendable (String) -> Void)? = nil) {
        self.registry = registry; self.httpProxy = httpProxy; self.keystore = keystore; self.dryRun = dryRun
        self.pushProgress = pushProgress; self.pullProgress = pullProgress; self.item = item; self.debug = debug
    }
}

/// One image or container of a registry sync.
public struct RegistrySyncItem: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case image, container }
    public var kind: Kind
    /// The local name: "repo/image:tag", or the container's first name (else id).
    public var name: String
    /// Where it is in the registry: HOST[:PORT]/REPOSITORY:TAG.
    public var remote: String
    public var manifest: Digest
    /// Objects (blobs and the manifest) whose bytes travelled, or would in a dry run.
    public var objectsSent: Int
    /// Objects the far side had already.
    public var objectsPresent: Int
    /// Bytes of the objects that travelled.
    public var bytes: Int64

    public init(kind: Kind, name: String, remote: String, manifest: Digest, objectsSent: Int, objectsPresent: Int, bytes: Int64) {
        self.kind = kind; self.name = name; self.remote = remote; self.manifest = manifest
        self.objectsSent = objectsSent; self.objectsPresent = objectsPresent; self.bytes = bytes
    }
}

public struct RegistrySyncResult: Codable, Sendable, Equatable {
    public var report = SyncReport()
    public var items: [RegistrySyncItem] = []

    mutating func add(_ item: RegistrySyncItem) {
        items.append(item)
        if item.kind == .image { report.images += 1 } else { report.containers += 1 }
        report.objectsSent += item.objectsSent
        report.objectsPresent += item.objectsPresent
        report.objectBytes += item.bytes
        report.bytesOnWire += item.bytes
    }
}

public enum RegistrySync {
    /// The manifest annotation a container image carries: the SyncContainer as JSON.
    public static let containerAnnotation = "org.udocker.container.v1"

    /// Pushes the images (and containers) `selection` names of `repository` to the namespace.
    /// Unknown names fail before anything is sent. An image whose tag already holds the same
    /// manifest is not pushed again; otherwise the push HEADs every blob and uploads only what the
    /// registry lacks, the manifest last.
    public static func push(repository: Repository, selection: SyncSelection, host: String, namespace: String,
                            configuration: Configuration, environment: [String: String],
                            access: RegistrySyncAccess = RegistrySyncAccess()) throws -> RegistrySyncResult {
        try push(repository: repository, selection: selection, host: host, namespace: namespace,
                 configuration: configuration, environment: environment, access: access, hooks: .standard)
    }

    static func push(repository: Repository, selection: SyncSelection, host: String, namespace: String,
                     configuration: Configuration, environment: [String: String],
                     access: RegistrySyncAccess, hooks: ContainerHooks?) throws -> RegistrySyncResult {
        var session = try Session(host: host, namespace: namespace, configuration: configuration,
                                  environment: environment, access: access)
        let store = try repository.openStore()
        let containers = try ContainerStore(repository: repository, store: store)
        let images = containers.images
        var chosen = try choose(selection, images: images, containers: containers, withContainers: hooks != nil)
        try session.reach()
        // Each container's delta is made (or found unchanged) first; its image travels with it,
        // under its own name, so the far side can record the image and materialise from it.
        var travelling = [(SyncContainer, LocalImage)]()
        for info in chosen.containers {
            guard let hooks else { break }
            let c = try hooks.prepare(repository, info)
            guard let base = try images.image(named: c.image), base.record.manifestDigest == c.imageManifest else {
                throw RuntimeError.syncRegistryBadContainer(info.names.first ?? info.id,
                    reason: "its image \(c.image) (\(c.imageManifest)) is not in this repository any more")
            }
            travelling.append((c, base))
            if !chosen.images.contains(where: { $0.name == base.name }) { chosen.images.append(base) }
        }
        chosen.images.sort { $0.name < $1.name }
        var result = RegistrySyncResult()
        let pusher = ImagePusher(client: session.client, store: store)
        var homes = [Digest: String]()
        for image in chosen.images {
            let item = try session.push(image, pusher: pusher, homes: &homes)
            result.add(item)
            access.item?(item)
        }
        for (c, base) in travelling {
            let item = try session.push(c, base: base, pusher: pusher, homes: &homes)
            result.add(item)
            access.item?(item)
        }
        return result
    }

    /// Brings images (and containers) of the namespace into `repository`: those `names` give
    /// (local names, as `push` had them), else every repository of the namespace the registry's
    /// catalog lists, every tag. An image already here with the same manifest is not pulled again;
    /// otherwise only the blobs the store lacks are downloaded.
    /// `images` / `containers` false (`--containers` / `--images`) leave that kind where it is.
    public static func pull(repository: Repository, host: String, namespace: String, names: [String],
                            images: Bool = true, containers: Bool = true,
                            options: SyncArrivalOptions = SyncArrivalOptions(),
                            configuration: Configuration, environment: [String: String],
                            access: RegistrySyncAccess = RegistrySyncAccess()) throws -> RegistrySyncResult {
        try pull(repository: repository, host: host, namespace: namespace, names: names, images: images,
                 containers: containers, options: options, configuration: configuration, environment: environment,
                 access: access, hooks: .standard)
    }

    static func pull(repository: Repository, host: String, namespace: String, names: [String],
                     images wantImages: Bool = true, containers wantContainers: Bool = true,
                     options: SyncArrivalOptions, configuration: Configuration, environment: [String: String],
                     access: RegistrySyncAccess, hooks: ContainerHooks?) throws -> RegistrySyncResult {
        var session = try Session(host: host, namespace: namespace, configuration: configuration,
                                  environment: environment, access: access)
        let store = try repository.openStore()
        let containers = try ContainerStore(repository: repository, store: store)
        try session.reach()
        let targets = try session.targets(names: names)
        var result = RegistrySyncResult()
        let puller = ImagePuller(client: session.client, store: store)
        // Images first: a container's image may be one of them.
        for target in targets where !target.isContainer && wantImages {
            let item = try session.pull(target, puller: puller, images: containers.images)
            result.add(item)
            access.item?(item)
        }
        guard let hooks, wantContainers else { return result }
        for target in targets where target.isContainer {
            let item = try session.pullContainer(target, puller: puller, repository: repository, images: containers.images,
                                                 options: options, land: hooks.land)
            result.add(item)
            access.item?(item)
        }
        return result
    }

    /// The images a selection names (sorted, each once). Names that are neither images nor
    /// containers here are an error listing them.
    static func choose(_ selection: SyncSelection, images: ImageStore, containers: ContainerStore, withContainers: Bool) throws
        -> (images: [LocalImage], containers: [ContainerInfo]) {
        var chosen = [String: LocalImage](), chosenContainers = [String: ContainerInfo]()
        if selection.names.isEmpty {
            if selection.images { for i in try images.images() { chosen[i.name.description] = i } }
            if selection.containers && withContainers { for c in try containers.containers() { chosenContainers[c.id] = c } }
        } else {
            var unknown = [String]()
            for n in selection.names {
                if selection.images, let i = try? images.image(named: n) {
                    chosen[i.name.description] = i
                } else if selection.containers, withContainers, let c = try? containers.require(n) {
                    chosenContainers[c.id] = c
                } else {
                    unknown.append(n)
                }
            }
            if !unknown.isEmpty {
                throw RuntimeError.syncNamesNotFound(unknown, images: try images.images().map(\.name.description))
            }
        }
        return (chosen.keys.sorted().compactMap { chosen[$0] }, chosenContainers.keys.sorted().compactMap { chosenContainers[$0] })
    }
}

/// How a container becomes a SyncContainer with its delta in the store (ContainerDelta), and how one
/// lands in a repository (ContainerArrival). Tests give their own to check the registry side alone.
struct ContainerHooks: Sendable {
    var prepare: @Sendable (Repository, ContainerInfo) throws -> SyncContainer
    var land: @Sendable (Repository, SyncContainer, SyncArrivalOptions) throws -> Void

    /// The real ones: ContainerDelta makes the delta, ContainerArrival lands it.
    static let standard: ContainerHooks? = ContainerHooks(
        prepare: { repository, info in try ContainerDelta.prepare(repository: repository, container: info.id) },
        land: { repository, container, options in
            _ = try ContainerArrival.land(repository: repository, container: container, options: options)
        })
}

/// One repository of the registry at one tag, as `pull` found it.
struct RegistryTarget {
    var repository: String
    var tag: String
    var manifest: FetchedManifest
    /// The annotation of a container image, when the manifest has one.
    var container: String?
    var isContainer: Bool { container != nil }
}

/// The registry side of one sync: the client, the naming rule and the location for messages.
struct Session {
    private(set) var client: RegistryClient
    let httpOptions: HTTPOptions
    let keystore: Keystore?
    let naming: RegistryNaming
    let location: String
    let access: RegistrySyncAccess
    let parallel: Int
    let maxLayerExpansion: UInt64

    init(host: String, namespace: String, configuration: Configuration, environment: [String: String],
         access: RegistrySyncAccess) throws {
        location = "docker://\(host)/\(namespace)"
        naming = try RegistryNaming(namespace: namespace)
        let endpoint = try RegistryNaming.endpoint(host: host, registryOption: access.registry, configuration: configuration)
        httpOptions = try RegistryAccess.httpOptions(configuration: configuration, environment: environment,
                                                     httpProxy: access.httpProxy, debug: access.debug)
        keystore = access.keystore
        client = try RegistryAccess.client(endpoint: endpoint, options: httpOptions, keystore: keystore)
        self.access = access
        parallel = try configuration.pullParallel
        maxLayerExpansion = try configuration.maxLayerExpansion
    }

    /// Runs `body`, naming this location and `what` in a registry error.
    func call<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as RegistryError {
            throw RuntimeError.syncRegistryFailed(location: location, what: what, e)
        }
    }

    /// Fails early, and clearly, when the registry cannot be reached at all; a loopback registry
    /// answering HTTPS in plain HTTP is spoken to in HTTP from then on. Other answers to GET /v2/
    /// (a registry that wants a token for it but serves anonymous pulls) are left to the requests
    /// that follow.
    mutating func reach() throws {
        do { try client.ping() } catch let e as RegistryError {
            if case .plainHTTP = e, client.endpoint.scheme == "https", RegistryNaming.isLoopback(client.endpoint.host) {
                client = try RegistryAccess.client(endpoint: RegistryEndpoint(scheme: "http", host: client.endpoint.host),
                                                   options: httpOptions, keystore: keystore)
                return try reach()
            }
            switch e {
            case .transport, .tls, .plainHTTP, .retriesExhausted, .invalidURL:
                throw RuntimeError.syncRegistryFailed(location: location, what: "reaching \(client.endpoint.baseURL)", e)
            default: return
            }
        }
    }

    func remote(_ repository: String, _ tag: String) -> String { "\(client.endpoint.displayName)/\(repository):\(tag)" }

    /// The manifest at `repository:tag`, or nil when the registry does not have it.
    func manifest(_ repository: String, _ tag: String) throws -> FetchedManifest? {
        do { return try client.fetchManifest(repository, reference: tag) } catch let e as RegistryError {
            if case .notFound = e { return nil }
            throw RuntimeError.syncRegistryFailed(location: location, what: "reading \(repository):\(tag)", e)
        }
    }

    // MARK: push

    /// Pushes one local image (or, in a dry run, asks which of its blobs the registry lacks).
    /// `homes` remembers which repository of this push holds a blob, so a later image mounts it.
    func push(_ image: LocalImage, pusher: ImagePusher, homes: inout [Digest: String]) throws -> RegistrySyncItem {
        let (repository, tag) = try naming.remote(image: image.name)
        let record = image.record
        let ref = ImageReference(registry: client.endpoint, repository: repository, tag: tag, digest: nil)
        let blobs = record.layers.map { ($0.digest, $0.size) } + [(record.configDigest, size(record.configDigest, pusher.store))]
        let item = RegistrySyncItem(kind: .image, name: image.name.description, remote: remote(repository, tag),
                                    manifest: record.manifestDigest, objectsSent: 0, objectsPresent: 0, bytes: 0)
        return try push(item, ref: ref, mediaType: record.manifestMediaType, blobs: blobs,
                        manifestSize: size(record.manifestDigest, pusher.store), pusher: pusher, homes: &homes,
                        mountFrom: ImagePush.mountSource(record, to: ref))
    }

    /// Pushes a container as `NAMESPACE/container-NAME:latest`: its image's layers, its delta, the
    /// config and manifest RegistryContainerImage makes (held by a pending ref while they are sent).
    func push(_ c: SyncContainer, base: LocalImage, pusher: ImagePusher, homes: inout [Digest: String]) throws -> RegistrySyncItem {
        let store = pusher.store
        let repository = try naming.remote(container: c.id, names: c.names)
        let tag = RegistryNaming.containerTag
        let (baseRepository, baseTag) = try naming.remote(image: base.name)
        let holder = Holder.pending(tag: "registry-sync-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        try BlobContent.cas { try store.setRef(holder: holder, digests: base.record.digests + [c.delta.digest]) }
        defer { try? store.removeRef(holder: holder) }
        let made = try RegistryContainerImage.make(c, base: base.record, baseReference: remote(baseRepository, baseTag), store: store)
        try BlobContent.cas { try store.setRef(holder: holder, digests: base.record.digests + [c.delta.digest, made.manifest]) }
        let raw = try RegistryContainerImage.blob(made.manifest, store: store)
        let parsed = try call("reading the manifest made for container \(c.id)") {
            try FetchedManifest.parse(raw: raw, mediaType: made.mediaType, digest: made.manifest)
        }
        guard case .image(let m) = parsed.content else { throw RuntimeError.layerMissing(made.manifest.description) }
        let ref = ImageReference(registry: client.endpoint, repository: repository, tag: tag, digest: nil)
        let item = RegistrySyncItem(kind: .container, name: c.names.first ?? c.id, remote: remote(repository, tag),
                                    manifest: made.manifest, objectsSent: 0, objectsPresent: 0, bytes: 0)
        return try push(item, ref: ref, mediaType: made.mediaType, blobs: (m.layers + [m.config]).map { ($0.digest, $0.size) },
                        manifestSize: made.size, pusher: pusher, homes: &homes, mountFrom: baseRepository)
    }

    /// Pushes the stored manifest `item.manifest` with its `blobs` to `ref`, unless the tag holds it
    /// already; in a dry run HEADs the blobs instead.
    private func push(_ item: RegistrySyncItem, ref: ImageReference, mediaType: String, blobs: [(Digest, Int64)],
                      manifestSize: Int64, pusher: ImagePusher, homes: inout [Digest: String],
                      mountFrom: String?) throws -> RegistrySyncItem {
        var item = item
        let repository = ref.repository
        defer { for (d, _) in blobs where homes[d] == nil { homes[d] = repository } }
        if try manifest(repository, ref.tag ?? "latest")?.digest == item.manifest {
            item.objectsPresent = blobs.count + 1
            return item
        }
        if access.dryRun {
            for (digest, size) in blobs {
                // A blob an earlier image of this dry run would send is there by then.
                if homes[digest] != nil { item.objectsPresent += 1; continue }
                let has = try call("asking for blob \(digest)") {
                    try client.headBlob(repository, digest: digest, scope: RegistryClient.pushScope(repository))
                }
                if has == nil { item.objectsSent += 1; item.bytes += size } else { item.objectsPresent += 1 }
            }
            item.objectsSent += 1
            item.bytes += manifestSize
            return item
        }
        let known = homes
        let mount = blobs.compactMap { known[$0.0] }.first(where: { $0 != repository }) ?? mountFrom
        let options = PushOptions(parallel: parallel, mountFrom: mount, progress: access.pushProgress)
        let pushed = try call("pushing \(item.name) as \(repository):\(ref.tag ?? "latest")") {
            try pusher.push(manifest: item.manifest, mediaType: mediaType, to: ref, options: options)
        }
        item.objectsSent = pushed.uploaded + 1
        item.objectsPresent = pushed.existed + pushed.mounted
        item.bytes = Int64(pushed.bytesUploaded) + manifestSize
        return item
    }

    private func size(_ digest: Digest, _ store: Store) -> Int64 {
        Int64((try? store.blobRecord(digest))??.size ?? 0)
    }

    // MARK: pull

    /// What `names` (or, with none, the whole namespace) stand for in the registry: images first,
    /// in name order. Names the namespace does not hold are an error listing them.
    func targets(names: [String]) throws -> [RegistryTarget] {
        var found = [RegistryTarget]()
        if names.isEmpty {
            let all = try call("listing the registry's repositories (/v2/_catalog); name the images and containers to bring instead") {
                try client.catalog()
            }
            for repository in all.filter({ $0.hasPrefix(naming.namespace + "/") }).sorted() {
                let tags = try call("listing the tags of \(repository)") { try client.listTags(repository) }
                for tag in tags.sorted() {
                    guard let m = try manifest(repository, tag) else { continue }
                    found.append(target(repository, tag, m))
                }
            }
        } else {
            var unknown = [String]()
            for name in names {
                if let t = try namedTarget(name) { found.append(t) } else { unknown.append(name) }
            }
            if !unknown.isEmpty {
                let held = ((try? client.catalog()) ?? []).filter { $0.hasPrefix(naming.namespace + "/") }
                    .map { String($0.dropFirst(naming.namespace.count + 1)) }.sorted()
                throw RuntimeError.syncRegistryNamesNotFound(unknown, location: location, available: held)
            }
        }
        var seen = Set<String>()
        return found.filter { seen.insert($0.repository + ":" + $0.tag).inserted }
            .sorted { ($0.isContainer ? 1 : 0, $0.repository, $0.tag) < ($1.isContainer ? 1 : 0, $1.repository, $1.tag) }
    }

    /// A name as `push` had it: a container (name or id), looked for as container-NAME:latest, or
    /// an image name.
    private func namedTarget(_ name: String) throws -> RegistryTarget? {
        if !name.contains("/"), !name.contains(":"), !name.contains("@"),
           let repository = try? naming.remote(container: name, names: []),
           let m = try manifest(repository, RegistryNaming.containerTag) {
            let t = target(repository, RegistryNaming.containerTag, m)
            if t.isContainer { return t }
        }
        guard let local = try? ImageName(parsing: name), let (repository, tag) = try? naming.remote(image: local),
              let m = try manifest(repository, tag) else { return nil }
        return target(repository, tag, m)
    }

    private func target(_ repository: String, _ tag: String, _ m: FetchedManifest) -> RegistryTarget {
        var annotation: String?
        if case .image(let image) = m.content { annotation = image.annotations?[RegistrySync.containerAnnotation] }
        return RegistryTarget(repository: repository, tag: tag, manifest: m, container: annotation)
    }

    /// Pulls one image of the namespace under its local name (or, in a dry run, counts the blobs the
    /// store lacks).
    func pull(_ target: RegistryTarget, puller: ImagePuller, images: ImageStore) throws -> RegistrySyncItem {
        let name = naming.local(repository: target.repository, tag: target.tag)
            ?? ImageName(name: target.repository, tag: target.tag)
        var item = RegistrySyncItem(kind: .image, name: name.description, remote: remote(target.repository, target.tag),
                                    manifest: target.manifest.digest, objectsSent: 0, objectsPresent: 0, bytes: 0)
        let store = images.store
        if let here = try images.image(name), here.record.manifestDigest == target.manifest.digest
            || here.record.indexDigest == target.manifest.digest {
            item.objectsPresent = here.record.layers.count + 2
            return item
        }
        if access.dryRun {
            var objects = [(Digest, Int64)]()
            if case .image(let m) = target.manifest.content { objects = (m.layers + [m.config]).map { ($0.digest, $0.size) } }
            objects.append((target.manifest.digest, Int64(target.manifest.raw.count)))
            for (digest, size) in objects {
                if store.hasBlob(digest) { item.objectsPresent += 1 } else { item.objectsSent += 1; item.bytes += max(0, size) }
            }
            return item
        }
        let ref = ImageReference(registry: client.endpoint, repository: target.repository, tag: target.tag,
                                 digest: target.manifest.digest)
        var options = PullOptions(parallel: parallel, progress: access.pullProgress)
        options.maxLayerExpansion = maxLayerExpansion
        // Manifest and config count as sent when the store lacked them before the pull.
        var small = [(target.manifest.digest, Int64(target.manifest.raw.count))]
        if case .image(let m) = target.manifest.content { small.append((m.config.digest, m.config.size)) }
        small = small.filter { !store.hasBlob($0.0) }
        let pulled = try call("pulling \(target.repository):\(target.tag)") {
            try puller.pull(ref, options: options) { p in _ = try images.record(p, as: name) }
        }
        let smallSent = small.count
        let smallBytes = small.reduce(Int64(0)) { $0 + max(0, $1.1) }
        item.objectsSent = pulled.layersDownloaded + smallSent
        item.objectsPresent = pulled.layers.count + 2 - item.objectsSent
        item.bytes = Int64(pulled.bytesDownloaded) + smallBytes
        return item
    }

    /// Brings a container back: its image (pulled by digest from where push put it, unless this
    /// repository has it), its delta blob, then `land` makes the container from this store.
    func pullContainer(_ target: RegistryTarget, puller: ImagePuller, repository: Repository, images: ImageStore,
                       options: SyncArrivalOptions,
                       land: (Repository, SyncContainer, SyncArrivalOptions) throws -> Void) throws -> RegistrySyncItem {
        let shown = "\(target.repository):\(target.tag)"
        let c = try RegistryContainerImage.container(from: target.container ?? "", manifest: target.manifest, shown: shown)
        var item = RegistrySyncItem(kind: .container, name: c.names.first ?? c.id, remote: remote(target.repository, target.tag),
                                    manifest: target.manifest.digest, objectsSent: 0, objectsPresent: 0, bytes: 0)
        let store = images.store
        let baseName: ImageName
        do { baseName = try ImageName(parsing: c.image) } catch {
            throw RuntimeError.syncRegistryBadContainer(shown, reason: "its image name '\(c.image)' is not valid")
        }
        let (baseRepository, baseTag) = try naming.remote(image: baseName)
        let here = try images.image(baseName)
        if let here, here.record.manifestDigest != c.imageManifest {
            throw RuntimeError.syncRegistryBadContainer(shown,
                reason: "the image \(baseName) here is not the one it was made from (\(c.imageManifest)); rename this one with 'udocker tag' and 'udocker rmi', then sync again")
        }
        if here == nil {
            guard let m = try manifest(baseRepository, c.imageManifest.description) else {
                throw RuntimeError.syncRegistryBadContainer(shown, reason: "its image \(c.image) is not at \(remote(baseRepository, baseTag)) any more")
            }
            let base = try pull(RegistryTarget(repository: baseRepository, tag: baseTag, manifest: m, container: nil),
                                puller: puller, images: images)
            item.objectsSent += base.objectsSent; item.objectsPresent += base.objectsPresent; item.bytes += base.bytes
        } else {
            item.objectsPresent += (here?.record.layers.count ?? 0) + 2
        }
        let holder = Holder.pending(tag: "registry-sync-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        try BlobContent.cas { try store.setRef(holder: holder, digests: [c.delta.digest]) }
        defer { try? store.removeRef(holder: holder) }
        if store.hasBlob(c.delta.digest) {
            item.objectsPresent += 1
        } else {
            item.objectsSent += 1
            item.bytes += c.delta.size
            if access.dryRun { return item }
            let writer = try BlobContent.cas {
                try store.beginBlob(expected: c.delta.digest, expectedSize: UInt64(max(0, c.delta.size)), mediaType: c.delta.mediaType)
            }
            try call("fetching the delta of container \(item.name)") {
                _ = try client.fetchBlob(target.repository, digest: c.delta.digest, expectedSize: UInt64(max(0, c.delta.size)),
                                         into: DeltaBlobSink(writer))
            }
            do { _ = try writer.commit() } catch let e as CASError {
                throw RuntimeError.syncRegistryFailed(location: location, what: "storing the delta of container \(item.name)",
                                                      .store("\(e)"))
            }
        }
        if access.dryRun { return item }
        try land(repository, c, options)
        return item
    }
}
