// Pulling an image into the store: resolve the manifest, reserve every digest with a pending ref,
// download layers in parallel straight into store blob writers (hashed once, by the store), unpack
// each as it arrives and check its diff_id, then hand the result to the caller to record.
import CAS
import Foundation

/// Pulls images from one registry into one store. Knows nothing of repositories: the caller records
/// the `PulledImage` (and sets its own ref) in the `commit` closure of `pull`.
public final class ImagePuller: @unchecked Sendable {
    public let client: RegistryClient
    public let store: Store

    public init(client: RegistryClient, store: Store) {
        self.client = client
        self.store = store
    }

    /// Pulls `ref`. The digests are held by a pending ref from before the first download until
    /// `commit` has returned, so GC and rmi cannot delete them in between; `commit` should set the
    /// real ref. On any failure nothing is recorded; layers already verified and unpacked stay in
    /// the store unreferenced (GC removes them; a retry reuses them).
    @discardableResult
    public func pull(_ ref: ImageReference, options: PullOptions = PullOptions(),
                     commit: (PulledImage) throws -> Void) throws -> PulledImage {
        let top = try client.fetchManifest(ref.repository, reference: ref.reference)
        var index: FetchedManifest? = nil
        var manifest = top
        if case .index(let list) = top.content {
            let entry = try list.select(options.platform)
            manifest = try client.fetchManifest(ref.repository, reference: entry.digest.description)
            index = top
        }
        let holder = Holder.pending(tag: "pull-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        defer { try? store.removeRef(holder: holder) }
        let pulled: PulledImage
        switch manifest.content {
        case .image(let m):
            pulled = try pullImage(ref, manifest: manifest, image: m, index: index, holder: holder, options: options)
        case .schema1(let m):
            pulled = try pullSchema1(ref, manifest: manifest, schema1: m, holder: holder, options: options)
        case .index:
            throw RegistryError.badManifest("the index entry for \(options.platform) is itself an index")
        }
        try commit(pulled)
        return pulled
    }

    // MARK: schema 2 / OCI

    private func pullImage(_ ref: ImageReference, manifest: FetchedManifest, image m: ImageManifest,
                           index: FetchedManifest?, holder: String, options: PullOptions) throws -> PulledImage {
        // The config is read before anything is reserved: it is only kept in memory until the
        // reservation below holds its digest, so one reservation covers everything.
        let configBytes = try fetchSmallBlob(ref.repository, m.config)
        let config = try ImageConfigSummary.parse(configBytes)
        guard config.diffIDs.count == m.layers.count else {
            throw RegistryError.badConfig("it lists \(config.diffIDs.count) diff_ids for \(m.layers.count) layers")
        }
        // Reserve before looking at what the store has: a blob seen here cannot vanish afterwards.
        let reserved = [manifest.digest, m.config.digest] + m.layers.map(\.digest) + (index.map { [$0.digest] } ?? [])
            + config.diffIDs
        try store.setRef(holder: holder, digests: reserved)

        options.progress?(.plan(manifest: manifest.digest, layers: m.layers.map { ($0.digest, $0.size) }))
        let jobs = m.layers.enumerated().map { i, l in
            LayerJob(index: i, digest: l.digest, size: l.size >= 0 ? UInt64(l.size) : nil, mediaType: l.mediaType,
                     expectedDiffID: config.diffIDs[i])
        }
        let results = try fetchLayers(ref.repository, jobs, options: options)

        // Small objects last, so a failed pull leaves no manifest or config behind.
        try ingest(configBytes, m.config.digest, m.config.mediaType)
        try ingest(manifest.raw, manifest.digest, manifest.mediaType)
        if let index { try ingest(index.raw, index.digest, index.mediaType) }
        return PulledImage(
            reference: ref, manifestDigest: manifest.digest, manifestMediaType: manifest.mediaType,
            indexDigest: index?.digest, configDigest: m.config.digest,
            layers: zip(m.layers, results).map { PulledLayer(digest: $0.digest, mediaType: $0.mediaType, size: $0.size, diffID: $1.diffID) },
            platform: config.platform, layersDownloaded: results.filter(\.downloaded).count,
            bytesDownloaded: results.filter(\.downloaded).reduce(0) { $0 + $1.size })
    }

    // MARK: schema 1 (legacy)

    private func pullSchema1(_ ref: ImageReference, manifest: FetchedManifest, schema1 m: SchemaV1Manifest,
                             holder: String, options: PullOptions) throws -> PulledImage {
        let legacy = try Schema1Image(m)
        // The stored manifest is named by the hash of its bytes (a signed manifest's registry digest
        // covers the payload only), so `verify` can check it like any blob.
        let rawDigest = try Self.sha256(manifest.raw)
        try store.setRef(holder: holder, digests: [rawDigest] + legacy.layers)
        options.progress?(.plan(manifest: rawDigest, layers: legacy.layers.map { ($0, -1) }))
        let jobs = legacy.layers.enumerated().map { i, d in
            LayerJob(index: i, digest: d, size: nil, mediaType: MediaType.dockerLayerGzip, expectedDiffID: nil)
        }
        let results = try fetchLayers(ref.repository, jobs, options: options)
        let diffIDs = results.map(\.diffID)
        let configBytes = try legacy.config(diffIDs: diffIDs)
        let configDigest = try Self.sha256(configBytes)
        try store.setRef(holder: holder, digests: [rawDigest, configDigest] + legacy.layers + diffIDs)
        try ingest(configBytes, configDigest, MediaType.dockerConfig)
        try ingest(manifest.raw, rawDigest, manifest.mediaType)
        let config = try ImageConfigSummary.parse(configBytes)
        return PulledImage(
            reference: ref, manifestDigest: rawDigest, manifestMediaType: manifest.mediaType, indexDigest: nil,
            configDigest: configDigest,
            layers: zip(legacy.layers, results).map {
                PulledLayer(digest: $0, mediaType: MediaType.dockerLayerGzip, size: Int64($1.size), diffID: $1.diffID)
            },
            platform: config.platform, layersDownloaded: results.filter(\.downloaded).count,
            bytesDownloaded: results.filter(\.downloaded).reduce(0) { $0 + $1.size })
    }

    // MARK: helpers

    struct LayerJob: Sendable {
        let index: Int
        let digest: Digest
        let size: UInt64?
        let mediaType: String
        let expectedDiffID: Digest?
    }

    struct LayerResult: Sendable {
        var diffID: Digest
        var size: UInt64
        var downloaded: Bool
    }

    /// Fetches (or finds) and unpacks every layer, `options.parallel` at a time. The first failure
    /// cancels the downloads still running and is thrown.
    func fetchLayers(_ repository: String, _ jobs: [LayerJob], options: PullOptions) throws -> [LayerResult] {
        let state = ParallelState<LayerResult>(count: jobs.count)
        let workers = min(max(1, options.parallel), max(1, jobs.count))
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            let thread = Thread { [self] in
                defer { group.leave() }
                while let i = state.next() {
                    do {
                        state.finish(i, try self.fetchLayer(repository, jobs[i], options: options, state: state))
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

    /// Fetches and unpacks one layer under the store's claim on its blob: of several pulls of one
    /// image at once (threads, processes, users of a group store, hosts), one downloads and unpacks
    /// each layer while the others wait and then find it in the store.
    private func fetchLayer(_ repository: String, _ job: LayerJob, options: PullOptions,
                            state: ParallelState<LayerResult>) throws -> LayerResult {
        try store.withClaim(on: job.digest, waiting: { options.progress?(.layerWaiting(index: job.index)) },
                            cancelled: { state.isCancelled }) {
            try fetchClaimedLayer(repository, job, options: options, state: state)
        }
    }

    private func fetchClaimedLayer(_ repository: String, _ job: LayerJob, options: PullOptions,
                                   state: ParallelState<LayerResult>) throws -> LayerResult {
        var downloaded = false
        var size: UInt64
        var unpack: StreamingUnpack? = nil
        if let r = try store.blobRecord(job.digest) {
            size = r.size
        } else {
            let writer = try store.beginBlob(expected: job.digest, expectedSize: job.size, mediaType: job.mediaType)
            // The layer is unpacked while it downloads; if that cannot start, it is unpacked from the
            // blob afterwards, as below.
            unpack = try? store.beginStreamingUnpack(blob: job.digest, expectedSize: job.size, diffID: job.expectedDiffID,
                                                     maxExpansion: options.maxLayerExpansion)
            let sink = StoreBlobSink(writer, index: job.index, progress: options.progress, unpack: unpack,
                                     cancelled: { state.isCancelled })
            do {
                try client.fetchBlob(repository, digest: job.digest, expectedSize: job.size, into: sink)
                size = try commit(writer, what: "blob \(job.digest) of \(repository)").size
            } catch {
                writer.abort()
                unpack?.abandon()
                throw error
            }
            downloaded = true
        }
        let diffID: Digest
        do { diffID = try unpack?.finish()?.diffID ?? store.unpackLayerID(blob: job.digest, maxExpansion: options.maxLayerExpansion) } catch let e as CASError {
            let bound = options.maxLayerExpansion.map { "; a layer may unpack to \($0) times its size (max_layer_expansion)" } ?? ""
            throw RegistryError.store("layer \(job.digest) of \(repository) cannot be unpacked: \(e)\(bound)")
        }
        if let expected = job.expectedDiffID, diffID != expected {
            throw RegistryError.diffIDMismatch(layer: job.digest, expected: expected, actual: diffID)
        }
        options.progress?(.layerDone(index: job.index, digest: job.digest, size: size, downloaded: downloaded))
        return LayerResult(diffID: diffID, size: size, downloaded: downloaded)
    }

    /// A config (or other small blob): from the store when it is there, else downloaded and verified.
    private func fetchSmallBlob(_ repository: String, _ d: Descriptor) throws -> [UInt8] {
        if store.hasBlob(d.digest), let bytes = try? FileIO.readFile(store.blobPath(d.digest)) { return bytes }
        let cap = client.http.options.maxDocumentBytes
        guard d.size <= Int64(cap) else {
            throw RegistryError.limitExceeded(
                url: "\(client.endpoint.displayName): blob \(d.digest) of \(repository)",
                what: "its descriptor gives \(d.size) bytes, more than \(cap), the most udocker reads for an image config",
                key: "max_document_size")
        }
        let sink = MemoryBlobSink()
        try client.fetchBlob(repository, digest: d.digest, expectedSize: d.size >= 0 ? UInt64(d.size) : nil, into: sink)
        return sink.bytes
    }

    private func ingest(_ bytes: [UInt8], _ digest: Digest, _ mediaType: String) throws {
        do { _ = try store.ingest(bytes: bytes, expected: digest, mediaType: mediaType) } catch let e as CASError {
            throw RegistryError.store("cannot store \(digest): \(e)")
        }
    }

    /// Commits a downloaded blob, turning the store's digest and size checks into registry errors
    /// that name the blob and its source.
    private func commit(_ writer: BlobWriter, what: String) throws -> BlobRecord {
        do { return try writer.commit() } catch CASError.digestMismatch(let expected, let actual) {
            throw RegistryError.digestMismatch(what: what, expected: expected, actual: actual)
        } catch CASError.sizeMismatch(let expected, let actual, _) {
            throw RegistryError.sizeMismatch(what: what, expected: expected, actual: actual)
        }
    }

    static func sha256(_ bytes: [UInt8]) throws -> Digest {
        let h = try SHA256Hasher()
        h.update(bytes)
        return h.finish()
    }
}

/// The work list of a parallel layer fetch or blob upload: hands out indexes, keeps results and the
/// first error.
final class ParallelState<R: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private let count: Int
    private var done: [R?]
    private var error: (any Error)? = nil

    init(count: Int) {
        self.count = count
        done = Array(repeating: nil, count: count)
    }

    var isCancelled: Bool { lock.withLock { error != nil } }

    func next() -> Int? {
        lock.withLock {
            guard error == nil, nextIndex < count else { return nil }
            nextIndex += 1
            return nextIndex - 1
        }
    }

    func finish(_ i: Int, _ r: R) { lock.withLock { done[i] = r } }

    func fail(_ e: any Error) {
        lock.withLock {
            // A download cancelled because another failed reports that cancellation; keep the cause.
            if error == nil { error = e }
        }
    }

    func results() throws -> [R] {
        try lock.withLock {
            if let error { throw error }
            return try done.map { r in
                guard let r else { throw RegistryError.store("internal error: a blob was not transferred; please report it") }
                return r
            }
        }
    }
}

/// Streams a download into a store BlobWriter, which hashes it (once) and checks it on commit.
final class StoreBlobSink: VerifyingBlobSink {
    private let writer: BlobWriter
    private let index: Int
    private let progress: (@Sendable (PullEvent) -> Void)?
    private let cancelled: () -> Bool
    private let unpack: StreamingUnpack?
    private var reported: UInt64 = 0

    init(_ writer: BlobWriter, index: Int, progress: (@Sendable (PullEvent) -> Void)?, unpack: StreamingUnpack? = nil,
         cancelled: @escaping () -> Bool) {
        self.writer = writer
        self.index = index
        self.progress = progress
        self.unpack = unpack
        self.cancelled = cancelled
    }

    var offset: UInt64 { writer.bytesWritten }

    func write(_ chunk: UnsafeRawBufferPointer) throws {
        if cancelled() { throw RegistryError.sink("cancelled because another layer failed") }
        do { try writer.write(chunk) } catch CASError.sizeMismatch(let expected, let actual, let d) {
            throw RegistryError.sizeMismatch(what: "blob \(d)", expected: expected, actual: actual)
        }
        unpack?.feed(chunk)
        if let progress, writer.bytesWritten - reported >= 256 << 10 {
            reported = writer.bytesWritten
            progress(.layerProgress(index: index, bytes: reported))
        }
    }

    func restart() throws {
        try writer.restart()
        unpack?.restart()
        reported = 0
    }
}
