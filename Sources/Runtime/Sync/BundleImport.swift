// import --repo: applies a bundle written by export --repo in one streaming pass, with sync's
// guarantees: objects verified before they are stored, layers unpacked as they arrive, refs last.
import CArchive
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct BundleImportRequest: Sendable {
    /// The bundle, or "-" for standard input.
    public var source: String
    public var arrival: SyncArrivalOptions
    public var maxLayerExpansion: UInt64?
    public var progress: (@Sendable (SyncEvent) -> Void)?

    public init(source: String, arrival: SyncArrivalOptions = SyncArrivalOptions(), maxLayerExpansion: UInt64? = nil,
                progress: (@Sendable (SyncEvent) -> Void)? = nil) {
        self.source = source; self.arrival = arrival; self.maxLayerExpansion = maxLayerExpansion; self.progress = progress
    }
}

public enum BundleImport {
    /// Failpoints: killed after the Nth object stored, and once every object is stored but nothing
    /// is recorded (SIGSTOP at the second, for a GC test).
    static let failpointPrefix = "bundle-import-object-"
    static let beforeRefsFailpoint = "bundle-import-before-refs"
    static let stopBeforeRefsFailpoint = "bundle-import-stop-before-refs"
    /// oci-layout and index.json are read past, not used: bundle.json says everything.
    static let layoutFileLimit: Int64 = 16 << 20

    /// Imports the bundle into `repository`. The result counts objects stored from the bundle
    /// (`objectsSent`) and those this store had (`objectsPresent`).
    public static func run(_ request: BundleImportRequest, repository: Repository) throws -> SyncResult {
        let name = request.source == "-" ? "standard input" : request.source
        let fd: Int32
        if request.source == "-" { fd = 0 } else {
            fd = Glibc.open(request.source, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw RuntimeError.bundleBad(name, "cannot open it: \(String(cString: strerror(errno)))") }
        }
        defer { if fd != 0 { _ = close(fd) } }
        let store = try repository.openStore()
        let images = try ContainerStore.imageStore(repository: repository, store: store)
        let landing = SyncLanding(store: store, images: images, arrival: request.arrival, maxLayerExpansion: request.maxLayerExpansion,
                                  beforeRefsFailpoint: beforeRefsFailpoint, stopBeforeRefsFailpoint: stopBeforeRefsFailpoint)
        let state = ImportState(source: name, landing: landing, progress: request.progress)
        defer { state.finish() }
        do {
            try TarEntries.read(fd: fd, source: name) { tar, entry, _ in try state.entry(tar, entry) }
        } catch RuntimeError.archiveRead(_, let why) {
            throw RuntimeError.bundleBad(name, why)
        }
        guard let manifest = state.manifest, let containers = state.containers else {
            throw RuntimeError.bundleBad(name, "it has no \(BundleManifest.path)")
        }
        try state.unpacks?.wait()
        // Everything must be here now: what came in the bundle, and what it left out for this store.
        let omitted = Set(manifest.omitted)
        var lacking = [Digest](), lackingOmitted = [Digest]()
        for o in manifest.objects where !store.hasBlob(o.digest) {
            if omitted.contains(o.digest) { lackingOmitted.append(o.digest) } else { lacking.append(o.digest) }
        }
        if !lacking.isEmpty {
            throw RuntimeError.bundleBad(name, "it lacks \(lacking.count) object(s) it lists (\(lacking[0]) first): it was cut short; write it again")
        }
        if !lackingOmitted.isEmpty {
            throw RuntimeError.bundleOmittedMissing(name, count: lackingOmitted.count, first: lackingOmitted[0].description)
        }
        try state.landing.land(images: manifest.images, containers: containers, source: "the bundle")

        let stored = state.stored
        var report = SyncReport()
        report.images = manifest.images.count
        report.containers = manifest.containers.count
        report.objectsSent = stored.count
        report.objectsPresent = manifest.objects.count - stored.count
        report.objectBytes = state.storedBytes
        report.bytesOnWire = state.bytesRead
        return SyncResult(report: report,
                          images: manifest.images.map { i in
                              let own = Set(i.record.blobs), n = own.intersection(stored).count
                              return SyncedItem(name: i.name, objectsSent: n, objectsPresent: own.count - n)
                          },
                          containers: manifest.containers.map { c in
                              let n = stored.contains(c.delta.digest) ? 1 : 0
                              return SyncedItem(name: c.names.first ?? c.id, objectsSent: n, objectsPresent: 1 - n)
                          },
                          wouldSend: [], dryRun: false)
    }
}

/// What one import has read so far; the tar loop calls `entry` for each entry in order.
private final class ImportState {
    let source: String
    let landing: SyncLanding
    var store: Store { landing.store }
    var maxLayerExpansion: UInt64? { landing.maxLayerExpansion }
    let progress: (@Sendable (SyncEvent) -> Void)?
    private(set) var manifest: BundleManifest?
    /// The bundle's containers, landed as soon as what they need is stored (from bundle.json on).
    private(set) var containers: ContainerLanding?
    private(set) var unpacks: BackgroundUnpacks?
    private(set) var stored = Set<Digest>()
    private(set) var storedBytes: Int64 = 0
    private(set) var bytesRead: Int64 = 0
    private var objects = [Digest: SyncObject]()
    /// Each arriving object's place in the progress plan.
    private var planIndex = [Digest: Int]()
    private var seen = Set<Digest>()
    private var layerDiffID = [Digest: Digest]()
    private var holder: String?

    init(source: String, landing: SyncLanding, progress: (@Sendable (SyncEvent) -> Void)?) {
        self.source = source; self.landing = landing; self.progress = progress
    }

    /// Waits for the unpacks and landings still running and drops the reservation (the records hold
    /// what landed).
    func finish() {
        unpacks?.waitQuietly()
        containers?.abandon()
        if let holder { try? store.removeRef(holder: holder) }
    }

    func entry(_ tar: TarEntries, _ entry: OpaquePointer) throws {
        let raw = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        guard let path = ArchiveScan.normalize(raw) else { throw bad("the entry '\(raw)' leads outside the archive") }
        let type = mode_t(archive_entry_filetype(entry))
        let size = archive_entry_size(entry)
        if type == S_IFDIR, ["", "blobs", "blobs/sha256", "udocker"].contains(path) { return }
        guard type == S_IFREG, archive_entry_hardlink(entry) == nil else {
            throw bad("the entry '\(raw)' is not a regular file (a bundle holds only files)")
        }
        bytesRead += max(size, 0)
        switch path {
        case "oci-layout", "index.json":
            guard size <= BundleImport.layoutFileLimit else { throw bad("\(path) is \(size) bytes, too large") }
            tar.skip()
        case BundleManifest.path:
            guard manifest == nil else { throw bad("it has two \(BundleManifest.path)") }
            try readManifest(tar, size: size)
        default:
            guard let digest = ArchiveScan.blobDigest(path) else {
                throw bad("it has an entry '\(raw)' that a bundle does not hold (is it an OCI archive? use 'udocker load' for those)")
            }
            try blob(tar, digest: digest, size: size)
        }
    }

    private func readManifest(_ tar: TarEntries, size: Int64) throws {
        guard size <= BundleManifest.sizeLimit else { throw bad("\(BundleManifest.path) is \(size) bytes, more than a bundle's \(BundleManifest.sizeLimit >> 20) MiB") }
        var bytes = [UInt8]()
        bytes.reserveCapacity(Int(max(size, 0)))
        try tar.pump(BundleManifest.path) { chunk in
            guard Int64(bytes.count + chunk.count) <= BundleManifest.sizeLimit else { throw bad("\(BundleManifest.path) is longer than it says") }
            bytes.append(contentsOf: chunk)
        }
        let m: BundleManifest
        do { m = try JSONDecoder().decode(BundleManifest.self, from: Data(bytes)) } catch {
            throw bad("its \(BundleManifest.path) cannot be read (\(error))")
        }
        guard m.kind == BundleManifest.kind else { throw bad("its \(BundleManifest.path) is of kind '\(m.kind)', not a repository bundle") }
        guard m.format == BundleManifest.currentFormat else {
            throw RuntimeError.bundleFormat(source, format: m.format, known: BundleManifest.currentFormat, writtenBy: m.writtenBy)
        }
        // Every image name and container id is checked before anything is stored.
        for i in m.images { _ = try ImageName(parsing: i.name) }
        for o in m.objects where objects[o.digest] == nil {
            guard o.size >= 0 else { throw bad("it lists \(o.digest) with a negative size") }
            objects[o.digest] = o
        }
        let listed = Set(m.objects.map(\.digest))
        for i in m.images {
            for d in i.record.blobs where !listed.contains(d) { throw bad("image \(i.name) needs \(d), which the bundle does not list") }
            for l in i.record.layers { layerDiffID[l.digest] = l.diffID }
        }
        for c in m.containers where !listed.contains(c.delta.digest) {
            throw bad("container \(c.id) needs its delta \(c.delta.digest), which the bundle does not list")
        }
        // Reserved before anything is looked at or stored: a GC meanwhile keeps all of it.
        let h = Holder.pending(tag: "bundle-import-" + String(UInt64.random(in: 0...UInt64.max), radix: 16))
        try BlobContent.cas { try store.setRef(holder: h, digests: m.objects.map(\.digest) + Array(Set(layerDiffID.values))) }
        holder = h
        unpacks = BackgroundUnpacks(store: store, limit: 2, maxExpansion: maxLayerExpansion)
        manifest = m
        containers = ContainerLanding(landing: landing, images: m.images, containers: m.containers)
        containers?.start()
        let omitted = Set(m.omitted)
        let coming = objects.values.filter { !omitted.contains($0.digest) && !store.hasBlob($0.digest) }
        for (i, o) in coming.enumerated() { planIndex[o.digest] = i }
        progress?(.plan(objects: coming.map { ($0.digest, $0.size) }, present: m.objects.count - coming.count))
    }

    private func blob(_ tar: TarEntries, digest: Digest, size: Int64) throws {
        guard manifest != nil else {
            throw bad("a blob comes before \(BundleManifest.path) (is it an OCI archive? use 'udocker load' for those)")
        }
        guard let o = objects[digest] else { throw bad("it holds blob \(digest), which its \(BundleManifest.path) does not list") }
        guard seen.insert(digest).inserted else { throw bad("it holds blob \(digest) twice") }
        guard size == o.size else { throw bad("blob \(digest) is \(size) bytes, its listing says \(o.size)") }
        if try BlobContent.cas({ try store.blobRecord(digest) }) != nil {
            tar.skip()
            return
        }
        guard let unpacks else { throw bad("a blob comes before \(BundleManifest.path)") }
        let writer = try BlobContent.cas { try store.beginBlob(expected: digest, expectedSize: UInt64(size), mediaType: o.mediaType) }
        let index = planIndex[digest] ?? 0
        try unpacks.ingest(writer, digest: digest, size: UInt64(size), diffID: layerDiffID[digest], whileArriving: true,
                           keepPartial: { _ in false },
                           mismatch: { self.bad("blob \(digest) does not match its digest (its content is \($0)); the bundle is damaged or was tampered with") }) { sink in
            try tar.pump("blobs/sha256/" + digest.hex) { chunk in
                try sink(chunk)
                progress?(.progress(index: index, bytes: Int64(writer.bytesWritten)))
            }
        }
        containers?.poke()
        stored.insert(digest)
        storedBytes += size
        progress?(.done(index: index))
        Failpoint.hit(BundleImport.failpointPrefix + String(stored.count))
    }

    private func bad(_ why: String) -> RuntimeError { RuntimeError.bundleBad(source, why) }
}
