// Builds OCI image layouts from Debian's busybox-static for the tests: a gzip image, a zstd image and a
// two-platform index; and the shared plain-HTTP registry they are pushed to.
import CAS
import Foundation

public struct BuiltLayer {
    public let mediaType: String
    public let digest: Digest
    public let size: Int64
}

/// An OCI image layout directory being filled.
public final class OCILayout {
    public let dir: String
    private var indexEntries: [[String: Any]] = []

    public init(dir: String) throws {
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir + "/blobs/sha256", withIntermediateDirectories: true)
        try writeFile(dir + "/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
    }

    @discardableResult
    public func addBlob(_ bytes: [UInt8]) throws -> (Digest, Int64) {
        let h = try SHA256Hasher()
        h.update(bytes)
        let d = h.finish()
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/blobs/sha256/" + d.hex))
        return (d, Int64(bytes.count))
    }

    public func addBlob(file: String) throws -> (Digest, Int64) {
        let (d, n) = try SHA256Hasher.hash(fileAt: file)
        try FileManager.default.copyItem(atPath: file, toPath: dir + "/blobs/sha256/" + d.hex)
        return (d, Int64(n))
    }

    /// Adds an image (one layer from the tar file at `tar`, compressed as asked) and returns its manifest descriptor JSON.
    public func addImage(tar: String, compression: String, arch: String, variant: String? = nil) throws -> [String: Any] {
        let (diffID, _) = try SHA256Hasher.hash(fileAt: tar)
        let layerFile: String
        let layerType: String
        switch compression {
        case "zstd":
            layerFile = tar + ".zst"
            try runCommand("/usr/bin/zstd", ["-q", "-f", tar, "-o", layerFile])
            layerType = MediaTypeNames.ociZstd
        default:
            layerFile = tar + ".gz"
            let gz = try runCommand("/bin/gzip", ["-n", "-c", tar])
            try Data(gz).write(to: URL(fileURLWithPath: layerFile))
            layerType = MediaTypeNames.ociGzip
        }
        let (layerDigest, layerSize) = try addBlob(file: layerFile)
        var config: [String: Any] = ["architecture": arch, "os": "linux",
                                     "rootfs": ["type": "layers", "diff_ids": [diffID.description]],
                                     "config": ["Cmd": ["/bin/sh"]]]
        if let variant { config["variant"] = variant }
        let (configDigest, configSize) = try addBlob(Array(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])))
        let manifest: [String: Any] = [
            "schemaVersion": 2, "mediaType": MediaTypeNames.ociManifest,
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest.description, "size": configSize],
            "layers": [["mediaType": layerType, "digest": layerDigest.description, "size": layerSize]],
        ]
        let (md, ms) = try addBlob(Array(try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])))
        var platform: [String: Any] = ["architecture": arch, "os": "linux"]
        if let variant { platform["variant"] = variant }
        return ["mediaType": MediaTypeNames.ociManifest, "digest": md.description, "size": ms, "platform": platform]
    }

    public func tag(_ descriptor: [String: Any], as tag: String) {
        var d = descriptor
        d["annotations"] = ["org.opencontainers.image.ref.name": tag]
        indexEntries.append(d)
    }

    /// Adds an OCI index of `entries` and returns its descriptor.
    public func addIndex(_ entries: [[String: Any]]) throws -> [String: Any] {
        let index: [String: Any] = ["schemaVersion": 2, "mediaType": MediaTypeNames.ociIndex, "manifests": entries]
        let (d, s) = try addBlob(Array(try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])))
        return ["mediaType": MediaTypeNames.ociIndex, "digest": d.description, "size": s]
    }

    public func writeIndex() throws {
        let index: [String: Any] = ["schemaVersion": 2, "manifests": indexEntries]
        try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]).write(to: URL(fileURLWithPath: dir + "/index.json"))
    }
}

public enum MediaTypeNames {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
}

/// The plain-HTTP registry shared by the read-only tests, with these images pushed:
/// test/busybox:oci (OCI, gzip), test/busybox:docker (Docker v2 schema 2), test/busybox:zstd (OCI, zstd),
/// test/multi:latest (OCI index: linux/amd64 busybox, linux/arm64 a small tar), test/busybox:v1 (schema 1),
/// and tags t00…t11 of test/many.
public final class SharedRegistry: @unchecked Sendable {
    public let registry: TestRegistry
    public let layout: String

    public static let shared: Result<SharedRegistry, any Error> = Result { try SharedRegistry() }

    public static func get() throws -> SharedRegistry { try shared.get() }

    private init() throws {
        registry = try TestRegistry()
        BackgroundProcesses.removeAtExit(registry.dir)
        let work = makeTempDir("images")
        defer { removeTree(work) }
        try FileManager.default.createDirectory(atPath: work + "/root/bin", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/usr/bin/busybox", toPath: work + "/root/bin/busybox")
        try FileManager.default.createSymbolicLink(atPath: work + "/root/bin/sh", withDestinationPath: "busybox")
        try runCommand("/bin/tar", ["-C", work + "/root", "-cf", work + "/busybox.tar", "bin"])
        try FileManager.default.createDirectory(atPath: work + "/other/etc", withIntermediateDirectories: true)
        try writeFile(work + "/other/etc/arch", "arm64\n")
        try runCommand("/bin/tar", ["-C", work + "/other", "-cf", work + "/other.tar", "etc"])

        layout = registry.dir + "/layout"
        let oci = try OCILayout(dir: layout)
        let amd = try oci.addImage(tar: work + "/busybox.tar", compression: "gzip", arch: "amd64")
        oci.tag(amd, as: "gzip")
        oci.tag(try oci.addImage(tar: work + "/busybox.tar", compression: "zstd", arch: "amd64"), as: "zstd")
        let arm = try oci.addImage(tar: work + "/other.tar", compression: "gzip", arch: "arm64", variant: "v8")
        oci.tag(try oci.addIndex([amd, arm]), as: "multi")
        try oci.writeIndex()

        try registry.push(layout: layout, tag: "gzip", to: "test/busybox", destTag: "oci")
        try registry.push(layout: layout, tag: "gzip", to: "test/busybox", destTag: "docker", format: "v2s2")
        try registry.push(layout: layout, tag: "zstd", to: "test/busybox", destTag: "zstd")
        try registry.push(layout: layout, tag: "multi", to: "test/multi", destTag: "latest", all: true)
        for i in 0..<12 {
            try registry.push(layout: layout, tag: "gzip", to: "test/many", destTag: String(format: "t%02d", i))
        }
    }
}
