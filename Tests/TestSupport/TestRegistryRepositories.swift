// What a test registry's storage holds, read from its files: the repositories that have a manifest
// (what a push made visible), for tests that check nothing was pushed or exactly these were.
import Foundation

extension TestRegistry {
    /// The repositories of the registry's storage that hold a manifest, sorted.
    public func manifestRepositories() -> [String] {
        let root = storage + "/docker/registry/v2/repositories"
        guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
        var out = [String]()
        while let p = e.nextObject() as? String {
            if p.hasSuffix("/_manifests") { out.append(String(p.dropLast("/_manifests".count))) }
        }
        return out.sorted()
    }
}
