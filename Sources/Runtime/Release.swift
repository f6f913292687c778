// The release this binary runs from, if any: its launcher (scripts/release.sh) starts the binary
// with the loader and libraries shipped beside it and names its directory in UDOCKER_RELEASE_DIR.
import CAS
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public enum Release {
    /// The launcher's variable: read once at start, then removed from the environment, so nothing of
    /// the launcher reaches the engines and containers udocker runs.
    public static let variable = "UDOCKER_RELEASE_DIR"
    private static let adopted = Mutex<String?>(nil)

    /// Takes the release directory out of `environment` (and the process environment).
    public static func adopt(_ environment: inout [String: String]) {
        guard let dir = environment.removeValue(forKey: variable) else { return }
        unsetenv(variable)
        if !dir.isEmpty, FileIO.isDirectory(dir) { adopted.withLock { $0 = dir } }
    }

    /// The unpacked release's top directory, or nil for a binary built and run in place.
    public static var directory: String? { adopted.withLock { $0 } }

    /// "COMMIT DATE" from the release's BUILD file, or nil.
    public static var build: String? {
        guard let dir = directory, let bytes = try? FileIO.readFile(dir + "/BUILD") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// The tools bundles shipped in the release (`tools/*.tar*`), for `install` without --from.
    public static var toolsBundles: [String] {
        guard let dir = directory, let names = try? FileIO.listDirectory(dir + "/tools") else { return [] }
        return names.filter { $0.contains(".tar") && !$0.hasPrefix(".") }.sorted().map { dir + "/tools/" + $0 }
    }

    /// This program as a command that starts it again: the release's launcher (the binary itself
    /// needs the release's loader), else the file /proc/self/exe names.
    public static var selfCommand: String {
        if let dir = directory { return dir + "/udocker" }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return CommandLine.arguments.first ?? "udocker" }
        return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
