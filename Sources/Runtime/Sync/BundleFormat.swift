// The offline bundle's own files (udocker/bundle.json beside the OCI image layout) and the have file
// `store have` writes, with the limits that keep a hostile one from exhausting memory.
import CAS
import Foundation

/// udocker/bundle.json: what the bundle's images and containers are and which objects it carries.
/// It comes before any blob in the archive, so an import knows what to expect while it streams.
public struct BundleManifest: Codable, Sendable, Equatable {
    public static let currentFormat = 1
    public static let kind = "udocker-repository-bundle"
    /// The entry's path in the archive.
    public static let path = "udocker/bundle.json"
    /// The largest bundle.json an import reads (container metadata included).
    static let sizeLimit: Int64 = 64 << 20

    public var kind: String
    public var format: Int
    public var images: [SyncImage]
    public var containers: [SyncContainer]
    /// Every object the images and containers need, in the order the archive holds them.
    public var objects: [SyncObject]
    /// Objects of `objects` left out of the archive because the have file said the target holds them.
    public var omitted: [Digest]
    /// The udocker that wrote the bundle (for messages only).
    public var writtenBy: String

    public init(images: [SyncImage], containers: [SyncContainer], objects: [SyncObject], omitted: [Digest], writtenBy: String) {
        kind = Self.kind; format = Self.currentFormat
        self.images = images; self.containers = containers; self.objects = objects; self.omitted = omitted
        self.writtenBy = writtenBy
    }
}

/// What a store holds, written by `udocker store have -o FILE` on a target and read by
/// `export --repo --have=FILE` on the source, so the bundle carries only what the target lacks.
public struct StoreHave: Codable, Sendable, Equatable {
    public static let currentFormat = 1
    public static let kind = "udocker-store-have"
    /// The largest have file read: about 10 million digests.
    static let sizeLimit: Int64 = 1 << 30

    public var kind: String
    public var format: Int
    /// The store it describes (for messages only).
    public var store: String
    public var blobs: [Digest]

    public init(store: String, blobs: [Digest]) {
        kind = Self.kind; format = Self.currentFormat; self.store = store; self.blobs = blobs
    }

    /// The blobs `store` holds now.
    public static func of(_ store: Store) throws -> StoreHave {
        StoreHave(store: store.layout.root, blobs: try BlobContent.cas { try store.blobs() }.map(\.digest).sorted())
    }

    /// Writes the have file to `path` ("-": standard output).
    public func write(to path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = Array(try e.encode(self)) + [10]
        if path == "-" {
            try BlobContent.cas { try bytes.withUnsafeBytes { try FileIO.writeAll(1, $0, path: "standard output") } }
        } else {
            try BlobContent.cas { try FileIO.writeAtomically(path, bytes) }
        }
    }

    /// Reads and checks a have file.
    public static func read(_ path: String) throws -> StoreHave {
        var st = stat()
        guard stat(path, &st) == 0 else { throw RuntimeError.bundleHaveFile(path, "cannot read it: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_size <= sizeLimit else {
            throw RuntimeError.bundleHaveFile(path, "it is not a regular file of at most \(sizeLimit >> 20) MiB")
        }
        let have: StoreHave
        do { have = try JSONDecoder().decode(StoreHave.self, from: Data(try FileIO.readFile(path))) } catch {
            throw RuntimeError.bundleHaveFile(path, "it is not a have file (\(error))")
        }
        guard have.kind == kind else { throw RuntimeError.bundleHaveFile(path, "it is not a have file (its kind is '\(have.kind)')") }
        guard have.format == currentFormat else {
            throw RuntimeError.bundleHaveFile(path, "it has format \(have.format), this udocker reads \(currentFormat): write it with the same udocker version")
        }
        return have
    }
}
