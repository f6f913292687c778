// How a container set up in a Fakechroot (Fn) or runc (Rn) mode travels: the delta is computed from
// a converted view of its ROOT (the files as they were before setup), never by changing the source,
// and it arrives in a PRoot mode.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ModeConversion {
    /// The mode a container arrives in: Fn and Rn become P1 (their setup is tied to the source host's
    /// paths and tools); P1, P2 and S1 stay.
    public static func arrivalMode(_ mode: String) -> String {
        let m = mode.uppercased()
        if m.hasPrefix("F") || m.hasPrefix("R") { return "P1" }
        return m
    }

    /// A container's ROOT as it travels: entries setup added that are left out, files setup patched
    /// that are read from their saved originals, symlinks setup changed that travel with their
    /// original targets.
    struct View {
        /// Names the conversion in the stat cache: a cache made under another view is not reused.
        var version: String = "p1"
        /// Paths (ROOT-relative) left out, by their parent directory.
        var hiddenByParent: [String: Set<String>] = [:]
        /// Files read from elsewhere: ROOT-relative path -> (stat of the original, its absolute path).
        var replaced: [String: (stat: stat, source: String)] = [:]
        /// Symlinks with another target than ROOT has.
        var targets: [String: String] = [:]

        func hidden(in parent: String) -> Set<String> { hiddenByParent[parent] ?? [] }
        func replacement(_ path: String) -> (stat: stat, source: String)? { replaced[path] }
        func symlinkTarget(_ path: String) -> String? { targets[path] }
    }

    /// The view of container `id` in mode `execmode`.
    static func view(containers: ContainerStore, id: String, execmode: String) throws -> View {
        View()
    }
}
