// The nouns every part of repository sync shares (ssh, local paths, offline bundles, registries):
// what travels (objects), what it makes on the far side (images, containers) and what happened.
import CAS
import Foundation

/// One store object that travels as it is stored: a blob (manifest, index, config, layer, container
/// delta), named by its digest.
public struct SyncObject: Codable, Sendable, Hashable {
    public var digest: Digest
    public var size: Int64
    public var mediaType: String

    public init(digest: Digest, size: Int64, mediaType: String) {
        self.digest = digest; self.size = size; self.mediaType = mediaType
    }
}

/// An image as it appears on the far side: its local name and record. Its objects are the record's
/// blobs; the unpacked layers are made by the receiver from the layer blobs.
public struct SyncImage: Codable, Sendable, Equatable {
    /// The local name, "repo/image:tag" as `images` prints it.
    public var name: String
    public var record: ImageRecord

    public init(name: String, record: ImageRecord) { self.name = name; self.record = record }
}

/// What the initiator asked for: which images and containers of the sending repository travel.
public struct SyncSelection: Codable, Sendable, Equatable {
    /// Images (`repo/image:tag`) and containers (id or name); empty means everything.
    public var names: [String]
    public var images: Bool
    public var containers: Bool

    public init(names: [String] = [], images: Bool = true, containers: Bool = true) {
        self.names = names; self.images = images; self.containers = containers
    }
}

/// What the receiving side does with what arrives.
public struct SyncArrivalOptions: Codable, Sendable, Equatable {
    /// Replace a container of another id that holds a name the arriving one has.
    public var force: Bool
    /// `--materialize=`: overrides the source container's materialize mode.
    public var materialize: String?
    /// `--execmode=`: a mode to set up on arrival (default: the converted Pn mode).
    public var execmode: String?

    public init(force: Bool = false, materialize: String? = nil, execmode: String? = nil) {
        self.force = force; self.materialize = materialize; self.execmode = execmode
    }
}

/// What one sync did, for the last line of output and for scripts (`--json` style output).
public struct SyncReport: Codable, Sendable, Equatable {
    public var images: Int = 0
    public var containers: Int = 0
    /// Objects whose bytes travelled, and how many the target already had.
    public var objectsSent: Int = 0
    public var objectsPresent: Int = 0
    /// Bytes written and read on the connection by the side that prints the report.
    public var bytesOnWire: Int64 = 0
    /// Bytes of object content sent (without framing or metadata).
    public var objectBytes: Int64 = 0

    public init() {}
}

/// A container as it travels: what the receiver needs, besides its image and the delta blob, to make
/// it again from its own store (`ContainerDelta` makes one on the sending side, `ContainerArrival`
/// lands it on the receiving side).
public struct SyncContainer: Codable, Sendable, Equatable {
    /// The container's id (its directory name under containers/), kept on arrival.
    public var id: String
    /// Its names (the symlinks beside its directory).
    public var names: [String]
    /// The image it was created from, as imagerepo.name holds it ("repo/image:tag"), and that image's
    /// manifest digest: the receiver materialises from the image with that digest.
    public var image: String
    public var imageManifest: Digest
    /// The delta layer: what ROOT changed against the image's merged tree, an OCI layer stored as a
    /// blob. An unchanged container's delta is the same bytes on every sync, so it travels once.
    public var delta: SyncObject
    /// container.json as the source has it.
    public var containerJSON: Data
    /// link, auto or copy: how the source container was materialised.
    public var materialize: String
    /// The execution mode it arrives in (Fn and Rn are converted to P1; P1/P2 stay).
    public var execmode: String
    /// Whether it was protected (udocker protect) on the source.
    public var protected: Bool
    /// The directories `auto` linked on the source (materialize.json), for an arrival in auto;
    /// nil: the target's configuration decides.
    public var linkDirs: [String]? = nil

    public init(id: String, names: [String], image: String, imageManifest: Digest, delta: SyncObject,
                containerJSON: Data, materialize: String, execmode: String, protected: Bool) {
        self.id = id; self.names = names; self.image = image; self.imageManifest = imageManifest
        self.delta = delta; self.containerJSON = containerJSON; self.materialize = materialize
        self.execmode = execmode; self.protected = protected
    }
}
