// Host facts the engines depend on and that cannot be seen from their --version: the cgroup
// layout (crun 1.8 refuses hybrid v1/v2 hosts) and whether unprivileged user namespaces work.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim

public enum CgroupLayout: String, Sendable {
    /// Only cgroup v2 mounted at /sys/fs/cgroup.
    case unified
    /// Only v1 hierarchies.
    case legacy
    /// v1 hierarchies plus a v2 one (usually /sys/fs/cgroup/unified), as on these machines.
    case hybrid
    /// No cgroup filesystem is mounted.
    case none

    /// Read from /proc/self/mountinfo (the mounts this process sees).
    public static func current() -> CgroupLayout {
        guard let bytes = try? FileIO.readFile("/proc/self/mountinfo") else { return .none }
        return parse(mountinfo: String(decoding: bytes, as: UTF8.self))
    }

    /// Classifies a mountinfo text: each line's filesystem type follows the " - " separator.
    public static func parse(mountinfo: String) -> CgroupLayout {
        var v1 = false, v2 = false, v2AtRoot = false
        for line in mountinfo.split(separator: "\n") {
            guard let sep = line.range(of: " - ") else { continue }
            let fstype = line[sep.upperBound...].split(separator: " ").first ?? ""
            let fields = line[..<sep.lowerBound].split(separator: " ")
            let mountPoint = fields.count > 4 ? String(fields[4]) : ""
            if fstype == "cgroup" { v1 = true }
            if fstype == "cgroup2" {
                v2 = true
                if mountPoint == "/sys/fs/cgroup" { v2AtRoot = true }
            }
        }
        if v2AtRoot && !v1 { return .unified }
        if v1 && v2 { return .hybrid }
        if v1 { return .legacy }
        return v2 ? .unified : .none
    }
}

public enum UserNamespaces {
    /// Why an unprivileged user cannot make a user namespace here, or nil when it can.
    /// Reads the sysctls a kernel uses to turn them off; runc's own start gives the final word.
    public static func unavailableReason() -> String? {
        if let v = readNumber("/proc/sys/user/max_user_namespaces"), v == 0 {
            return "user namespaces are disabled (user.max_user_namespaces = 0)"
        }
        if geteuid() != 0, let v = readNumber("/proc/sys/kernel/unprivileged_userns_clone"), v == 0 {
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
        }
        if geteuid() != 0, let v = readNumber("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"), v == 1 {
            return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)"
        }
        return nil
    }

    private static func readNumber(_ path: String) -> Int? {
        guard let b = try? FileIO.readFile(path) else { return nil }
        return Int(String(decoding: b, as: UTF8.self).trimmingCharacters())
    }
}
