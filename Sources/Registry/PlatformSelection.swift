// Choosing the manifest for one platform from a manifest list / OCI index; the host platform from uname.
#if canImport(Glibc)
import Glibc
#endif

extension Platform {
    /// Parses `--platform=OS/ARCH[/VARIANT]`.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." } }) else {
            throw RegistryError.invalidPlatform(text)
        }
        self.init(os: parts[0], architecture: Platform.normalizeArch(parts[1]), variant: parts.count == 3 ? parts[2] : nil)
    }

    /// This machine, in OCI names (uname machine x86_64 -> amd64, aarch64 -> arm64/v8, armv7l -> arm/v7…).
    public static var host: Platform {
        var u = utsname()
        _ = uname(&u)
        let machine = withUnsafeBytes(of: &u.machine) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        switch machine {
        case "x86_64", "amd64": return Platform(os: "linux", architecture: "amd64")
        case "aarch64", "arm64": return Platform(os: "linux", architecture: "arm64", variant: "v8")
        case "armv7l", "armv7": return Platform(os: "linux", architecture: "arm", variant: "v7")
        case "armv6l": return Platform(os: "linux", architecture: "arm", variant: "v6")
        case "armv5tel", "armv5l": return Platform(os: "linux", architecture: "arm", variant: "v5")
        case "i386", "i486", "i586", "i686": return Platform(os: "linux", architecture: "386")
        case "ppc64le": return Platform(os: "linux", architecture: "ppc64le")
        case "s390x": return Platform(os: "linux", architecture: "s390x")
        case "riscv64": return Platform(os: "linux", architecture: "riscv64")
        case "mips64": return Platform(os: "linux", architecture: "mips64le")
        default: return Platform(os: "linux", architecture: machine)
        }
    }

    static func normalizeArch(_ a: String) -> String {
        switch a {
        case "x86_64", "x86-64": return "amd64"
        case "aarch64": return "arm64"
        case "i386", "i686": return "386"
        default: return a
        }
    }
}

extension ImageIndex {
    /// The entry for `wanted`. Exact os/arch/variant wins; then, when a variant is asked for, an entry
    /// of the same os/arch without variant; for arm64 "v8" and no variant are the same. Attestation
    /// entries (os "unknown") are never chosen.
    public func select(_ wanted: Platform) throws -> Descriptor {
        let candidates = manifests.filter { d in
            guard let p = d.platform else { return false }
            return p.os == wanted.os && Platform.normalizeArch(p.architecture) == wanted.architecture
        }
        func norm(_ v: String?, _ arch: String) -> String? { arch == "arm64" && v == "v8" ? nil : v }
        let wantVariant = norm(wanted.variant, wanted.architecture)
        if let exact = candidates.first(where: { norm($0.platform?.variant, wanted.architecture) == wantVariant }) {
            return exact
        }
        if wantVariant != nil, let loose = candidates.first(where: { $0.platform?.variant == nil }) {
            return loose
        }
        if wantVariant == nil, candidates.count >= 1 {
            // No variant asked for: take the first entry of that os/arch (registries list the preferred one first).
            return candidates[0]
        }
        let available = manifests.compactMap { $0.platform }.filter { $0.os != "unknown" }.map(\.description)
        throw RegistryError.noMatchingPlatform(requested: wanted.description, available: available.isEmpty ? ["none listed"] : available)
    }
}
