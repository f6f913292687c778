// Pushing an image from the store to a registry: every blob the manifest names is checked with HEAD,
// mounted from another repository of the same registry when possible, else uploaded streaming from
// its store file; then the stored manifest bytes are PUT unchanged, so the image keeps its digest.
import CAS
import Foundation

/// What happened to one blob of a push.
public enum PushOutcome: Sendable, Equatable {
    /// The registry had it already (HEAD answered 200).
    case existed
    /// Linked from another repository of the same registry without upload.
    case mounted(from: String)
    case uploaded
}

/// Progress of a push, reported from the upload threads (the receiver must be thread-safe).
public enum PushEvent: Sendable, Equatable {
    /// The manifest is read: these blobs (layers, then the config) will be checked and sent.
    case plan(manifest: Digest, blobs: [Blob])
    /// Blob `index` has `bytes` sent (after each chunk of a chunked upload).
    case blobProgress(index: Int, bytes: UInt64)
    case blobDone(index: Int, digest: Digest, size: UInt64, outcome: PushOutcome)

    public struct Blob: Sendable, Equatable {
        public var digest: Digest
        public var size: UInt64
    }
}

public struct PushOptions: Sendable {
    /// Blobs sent at once (udocker.conf `pull_parallel`, shared with pull).
    public var parallel: Int
    /// Blobs larger than this go in PATCH chunks of this size; smaller ones in one PUT.
    public var chunkSize: UInt64
    /// A repository of the same registry that holds the image's blobs (where it was pulled from):
    /// missing blobs are mounted from it before anything is uploaded.
    public var mountFrom: String?
    public var progress: (@Sendable (PushEvent) -> Void)?

    public static let defaultChunkSize: UInt64 = 32 << 20

    public init(parallel: Int = PullOptions.defaultParallel, chunkSize: UInt64 = PushOptions.defaultChunkSize,
                mountFrom: String? = nil, progress: (@Sendable (PushEvent) -> Void)? = nil) {
        self.parallel = max(1, parallel)
        self.chunkSize = max(1, chunkSize)
        self.mountFrom = mountFrom
        self.progress = progress
    }
}

/// The result of a push.
public struct PushedImage: Sendable, Equatable {
    public var reference: ImageReference
    public var manifestDigest: Digest
    /// Layers first, then the config, with what happened to each.
    public var blobs: [(digest: Digest, size: UInt64, outcome: PushOutcome)]

    public var uploaded: Int { blobs.filter { $0.outcome == .uploaded }.count }
    public var mounted: Int { blobs.filter { if case .mounted = $0.outcome { return true } else { return false } }.count }
    public var existed: Int { blobs.filter { $0.outcome == .existed }.count }
    public var bytesUploaded: UInt64 { blobs.filter { $0.outcome == .uploaded }.reduce(0) { $0 + $1.size } }

    public static func == (a: PushedImage, b: PushedImage) -> Bool {
        a.reference == b.reference && a.manifestDigest == b.manifestDigest
            && a.blobs.map(\.digest) == b.blobs.map(\.digest) && a.blobs.map(\.outcome) == b.blobs.map(\.outcome)
    }
}

/// Pushes images from one store to one registry. Knows nothing of repositories: the caller names the
/// manifest (digest and media type) and the destination.
public final class ImagePusher: @unchecked Sendable {
    public let client: RegistryClient
    public let store: Store

    public init(client: RegistryClient, store: Store) {
        self.client = client
        self.store = store
    }

    /// Pushes the image whose manifest is store blob `manifest` to `ref` (its tag, or its digest,
    /// which must then be `manifest`). Blobs first, the manifest last: a failed push leaves no tag.
    /// The image's blobs are held by a pending ref while they are read, so rmi or GC cannot remove
    /// them half-way.
    @discardableResult
    public func push(manifest digest: Digest, mediaType: String, to ref: ImageReference,
                     options: PushOptions = PushOptions()) throws -> PushedImage {
        if let d = ref.digest, d != digest {
            throw RegistryError.cannotPush("the destination names digest \(d), but the image's manifest is \(digest)")
        }
        let holder = Holder.pending(tag: "push-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        try storeCall { try store.setRef(holder: holder, digests: [digest]) }
        defer { try? store.removeRef(holder: holder) }

        let raw = try readManifest(digest)
        let parsed = try FetchedManifest.parse(raw: raw, mediaType: mediaType, digest: digest)
        let image: ImageManifest
        switch parsed.content {
        case .image(let m): image = m
        case .schema1:
            throw RegistryError.cannotPush("the image has a Docker schema 1 manifest, which registries no longer accept; "
                + "pull it from a registry that serves a schema 2 or OCI manifest")
        case .index:
            throw RegistryError.cannotPush("\(digest) is a manifest list; push one of its platform images instead")
        }
        let descriptors = image.layers + [image.config]
        try storeCall { try store.setRef(holder: holder, digests: [digest] + descriptors.map(\.digest)) }
        var blobs: [PushEvent.Blob] = []
        for d in descriptors {
            guard let size = try storeCall({ try store.blobRecord(d.digest) })?.size, store.hasBlob(d.digest) else {
                throw RegistryError.cannotPush("blob \(d.digest) of the image is missing from the store; "
                    + "run 'udocker verify' on the image, or pull it again")
            }
            if d.size >= 0, UInt64(d.size) != size {
                throw RegistryError.cannotPush("blob \(d.digest) has \(size) bytes in the store but the manifest says \(d.size); "
                    + "run 'udocker verify' on the image")
            }
            blobs.append(PushEvent.Blob(digest: d.digest, size: size))
        }
        options.progress?(.plan(manifest: digest, blobs: blobs))

        let outcomes = try sendBlobs(ref.repository, blobs, options: options)
        let reference = ref.digest?.description ?? ref.tag ?? "latest"
        let registryDigest = try client.putManifest(ref.repository, reference: reference, raw: raw, mediaType: parsed.mediaType)
        if registryDigest != digest {
            throw RegistryError.uploadDigestMismatch(what: "the manifest", sent: digest, registry: registryDigest)
        }
        return PushedImage(reference: ref, manifestDigest: digest,
                           blobs: zip(blobs, outcomes).map { ($0.digest, $0.size, $1) })
    }

    /// Checks, mounts or uploads every blob, `options.parallel` at a time; the first failure stops
    /// the others from starting and is thrown.
    private func sendBlobs(_ repository: String, _ blobs: [PushEvent.Blob], options: PushOptions) throws -> [PushOutcome] {
        let state = ParallelState<PushOutcome>(count: blobs.count)
        let workers = min(max(1, options.parallel), max(1, blobs.count))
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                while let i = state.next() {
                    do {
                        let outcome = try self.sendBlob(repository, blobs[i], index: i, options: options)
                        state.finish(i, outcome)
                        options.progress?(.blobDone(index: i, digest: blobs[i].digest, size: blobs[i].size, outcome: outcome))
                    } catch {
                        state.fail(error)
                    }
                }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        return try state.results()
    }

    private func sendBlob(_ repository: String, _ blob: PushEvent.Blob, index: Int, options: PushOptions) throws -> PushOutcome {
        let scope = RegistryClient.pushScope(repository)
        if try client.headBlob(repository, digest: blob.digest, scope: scope) != nil { return .existed }
        var location: String? = nil
        if let from = options.mountFrom, from != repository {
            switch try? client.mountBlob(repository, digest: blob.digest, from: from) {
            case .mounted: return .mounted(from: from)
            case .uploadStarted(let url): location = url
            // A registry that refuses the mount (no pull right on the source, no such blob there)
            // still takes an upload.
            case nil: break
            }
        }
        let body = HTTPBody.file(path: store.blobPath(blob.digest), offset: 0, length: blob.size)
        let progress = options.progress
        try client.uploadBlob(repository, digest: blob.digest, body: body,
                              chunkSize: blob.size > options.chunkSize ? options.chunkSize : nil,
                              location: location, progress: { progress?(.blobProgress(index: index, bytes: $0)) })
        return .uploaded
    }

    /// The stored manifest, checked against its digest before it is sent.
    private func readManifest(_ digest: Digest) throws -> [UInt8] {
        guard store.hasBlob(digest) else {
            throw RegistryError.cannotPush("the image's manifest \(digest) is missing from the store; pull the image again")
        }
        let raw = try storeCall { try FileIO.readFile(store.blobPath(digest)) }
        let h = try SHA256Hasher()
        h.update(raw)
        let actual = h.finish()
        guard actual == digest else {
            throw RegistryError.cannotPush("the stored manifest \(digest) hashes to \(actual); run 'udocker verify' on the image")
        }
        return raw
    }

    private func storeCall<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as CASError { throw RegistryError.store("\(e)") }
    }
}
