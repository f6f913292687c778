// Local image names: how a reference the user types names an image of a repository (udocker 1.3's
// repos/<name>/<tag>), independent of the registry it is pulled from.
import CAS
import Registry

/// The name of a local image: `name` as udocker 1.3 shows it and `tag`.
///
/// A Docker Hub image is named without `docker.io/` and without `library/` ("busybox",
/// "user/app"); an image whose reference names a registry host keeps it ("quay.io/org/app",
/// "127.0.0.1:5000/test/busybox"). An image pulled from `--registry`/`UDOCKER_REGISTRY` keeps the
/// name as typed, as udocker 1.3 does. A reference by digest only has the tag "@sha256:<hex>".
public struct ImageName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: String
    public let tag: String

    public init(name: String, tag: String) {
        self.name = name
        self.tag = tag
    }

    /// Parses a reference as typed ([HOST[:PORT]/]NAME[:TAG][@DIGEST]). The tag defaults to latest.
    public init(parsing text: String) throws {
        let ref: ImageReference
        do { ref = try ImageReference.parse(text) } catch let e as RegistryError {
            if case .invalidReference(_, let why) = e { throw RuntimeError.invalidImageName(text, why) }
            throw RuntimeError.invalidImageName(text, "\(e)")
        }
        self.init(reference: ref)
    }

    /// The local name of a parsed reference (see the type's documentation).
    public init(reference ref: ImageReference) {
        var n = ref.repository
        if ref.registry.isDockerHub {
            if n.hasPrefix("library/") && n.split(separator: "/").count == 2 { n.removeFirst("library/".count) }
        } else {
            n = ref.registry.host + "/" + n
        }
        name = n
        tag = ref.tag ?? ref.digest.map { "@" + $0.description } ?? "latest"
    }

    /// "name:tag", or "name@sha256:…" for a digest reference.
    public var description: String { tag.hasPrefix("@") ? name + tag : name + ":" + tag }

    public static func < (a: ImageName, b: ImageName) -> Bool {
        (a.name, a.tag) < (b.name, b.tag)
    }
}
