// Which udocker execution modes can run on this host with the host's engines (proot, libfakechroot and
// patchelf, runc or crun with user namespaces, apptainer), and why not, for suites that run every mode.
import CAS
#if canImport(Glibc)
import Glibc
#endif

public enum ExecutionModeSupport {
    /// Why `mode` cannot run here, or nil when the engines it needs are installed and usable.
    public static func unavailableReason(_ mode: String) -> String? {
        var missing = [String]()
        let needsProot = mode.hasPrefix("P") || mode == "R2" || mode == "R3"
        if needsProot && locate("proot") == nil { missing.append("proot is not installed") }
        if mode.hasPrefix("F") {
            if !libfakechrootInstalled { missing.append("libfakechroot is not installed (Debian package libfakechroot)") }
            if (mode == "F3" || mode == "F4") && locate("patchelf") == nil { missing.append("patchelf is not installed") }
        }
        if mode == "S1" && locate("apptainer") == nil && locate("singularity") == nil {
            missing.append("neither apptainer nor singularity is installed")
        }
        if mode.hasPrefix("R") {
            if locate("runc") == nil && locate("crun") == nil { missing.append("neither runc nor crun is installed") }
            if let why = userNamespacesUnavailable { missing.append(why) }
        }
        return missing.isEmpty ? nil : "\(mode) cannot run here: " + missing.joined(separator: ", ")
    }

    /// Whether every mode of `modes` can run here.
    public static func available(_ modes: [String]) -> Bool {
        modes.allSatisfy { unavailableReason($0) == nil }
    }

    static var libfakechrootInstalled: Bool {
        ["/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so", "/usr/lib/aarch64-linux-gnu/fakechroot/libfakechroot.so"]
            .contains { FileIO.exists($0) }
    }

    /// Rootless runc needs user namespaces (root needs none).
    static var userNamespacesUnavailable: String? {
        if geteuid() == 0 { return nil }
        let number = { (p: String) -> Int? in
            (try? FileIO.readFile(p)).flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        if number("/proc/sys/user/max_user_namespaces") == 0 { return "user namespaces are disabled (user.max_user_namespaces = 0)" }
        if number("/proc/sys/kernel/unprivileged_userns_clone") == 0 { return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)" }
        return nil
    }

    static func locate(_ name: String) -> String? {
        for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] where access(dir + "/" + name, X_OK) == 0 {
            return dir + "/" + name
        }
        return nil
    }
}
