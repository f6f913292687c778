// What a pull produces and reports: the pulled image's description (which the Runtime records as an
// image of a repository), progress events, and the pull's settings.
import CAS

/// One layer of a pulled image: its blob and the diff_id of its unpacked content.
public struct PulledLayer: Sendable, Equatable, Codable {
    public var digest: Digest
    public var mediaType: String
    public var size: Int64
    public var diffID: Digest

    public init(digest: Digest, mediaType: String, size: Int64, diffID: Digest) {
        self.digest = digest; self.mediaType = mediaType; self.size = size; self.diffID = diffID
    }
}

/// An image whose manifest, config, layer blobs and unpacked layers are all in the store.
public struct PulledImage: Sendable, Equatable {
    public var reference: ImageReference
    public var manifestDigest: Digest
    public var manifestMediaType: String
    /// The manifest list / OCI index the manifest was chosen from, if any.
    public var indexDigest: Digest?
    public var configDigest: Digest
    public var layers: [PulledLayer]
    public var platform: Platform
    /// Layers fetched from the registry by this pull (the others were in the store already).
    public var layersDownloaded: Int
    public var bytesDownloaded: UInt64

    /// Every store object the image needs: manifest, index, config, layer blobs, diff_ids.
    public var digests: [Digest] {
        var d = [manifestDigest, configDigest] + layers.map(\.digest) + layers.map(\.diffID)
        if let indexDigest { d.append(indexDigest) }
        return Array(Set(d)).sorted()
    }
}

/// Progress of a pull, reported from the threads doing the work (the receiver must be thread-safe).
public enum PullEvent: Sendable, Equatable {
    /// The manifest is resolved: these layers (blob digest, size) will be fetched or found.
    case plan(manifest: Digest, layers: [(digest: Digest, size: Int64)])
    /// Layer `index` has `bytes` of its blob in hand (sent now and then while downloading).
    case layerProgress(index: Int, bytes: UInt64)
    /// Layer `index` waits for another pull (thread, process or host) that is fetching the same blob.
    case layerWaiting(index: Int)
    /// Layer `index` is stored and unpacked; `downloaded` is false when the store had its blob.
    case layerDone(index: Int, digest: Digest, size: UInt64, downloaded: Bool)

    public static func == (a: PullEvent, b: PullEvent) -> Bool {
        switch (a, b) {
        case let (.plan(m1, l1), .plan(m2, l2)):
            return m1 == m2 && l1.map(\.digest) == l2.map(\.digest) && l1.map(\.size) == l2.map(\.size)
        case let (.layerProgress(i1, b1), .layerProgress(i2, b2)): return i1 == i2 && b1 == b2
        case let (.layerWaiting(i1), .layerWaiting(i2)): return i1 == i2
        case let (.layerDone(i1, d1, s1, w1), .layerDone(i2, d2, s2, w2)): return i1 == i2 && d1 == d2 && s1 == s2 && w1 == w2
        default: return false
        }
    }
}

public struct PullOptions: Sendable {
    /// The platform chosen from a manifest list / index.
    public var platform: Platform = .host
    /// Layers downloaded at once (udocker.conf `pull_parallel`, default 3).
    public var parallel = 3
    public var progress: (@Sendable (PullEvent) -> Void)? = nil
    /// A layer may unpack to at most this many times its blob's size (udocker.conf
    /// `max_layer_expansion`); nil: no bound beyond the unverified stream's.
    public var maxLayerExpansion: UInt64? = nil

    public static let defaultParallel = 3

    public init(platform: Platform = .host, parallel: Int = PullOptions.defaultParallel,
                progress: (@Sendable (PullEvent) -> Void)? = nil) {
        self.platform = platform
        self.parallel = max(1, parallel)
        self.progress = progress
    }
}
