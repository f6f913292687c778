// The rootless OCI runtime configuration (config.json) a runc/crun run gets, written per run from
// the RunPlan: the shape of `runc spec --rootless`, with udocker's choices (host network, no cgroups).
#if canImport(Glibc)
import Glibc
#endif
import CAS

/// The subset of the OCI runtime spec udocker writes.
struct OCIConfig: Encodable {
    struct User: Encodable { var uid: UInt32; var gid: UInt32 }
    struct Capabilities: Encodable {
        var bounding: [String], effective: [String], inheritable: [String], permitted: [String], ambient: [String]
    }
    struct Process: Encodable {
        var terminal: Bool
        var user: User
        var args: [String]
        var env: [String]
        var cwd: String
        var capabilities: Capabilities
        var noNewPrivileges: Bool
    }
    struct Root: Encodable { var path: String; var readonly: Bool }
    struct Mount: Encodable, Equatable {
        var destination: String
        var type: String
        var source: String
        var options: [String]
    }
    struct IDMapping: Encodable { var containerID: UInt32; var hostID: UInt32; var size: UInt32 }
    struct Namespace: Encodable { var type: String }
    struct Linux: Encodable {
        var uidMappings: [IDMapping]
        var gidMappings: [IDMapping]
        var namespaces: [Namespace]
        var maskedPaths: [String]
        var readonlyPaths: [String]
    }

    var ociVersion = "1.0.2"
    var process: Process
    var root: Root
    var hostname: String
    var mounts: [Mount]
    var linux: Linux

    /// The file runc reads, byte for byte what JSONEncoder writes with sorted keys and unescaped
    /// slashes (RuncConfigTests), written by hand: JSONEncoder's first use costs a run about 1 ms.
    func json() -> [UInt8] {
        var w = JSONByteWriter(capacity: 4096)
        func strings(_ a: [String]) { w.array(a) { w, s in w.string(s) } }
        w.raw("{\"hostname\":")
        w.string(hostname)
        w.raw(",\"linux\":{\"gidMappings\":")
        idMappings(&w, linux.gidMappings)
        w.raw(",\"maskedPaths\":")
        strings(linux.maskedPaths)
        w.raw(",\"namespaces\":")
        w.array(linux.namespaces) { w, n in
            w.raw("{\"type\":")
            w.string(n.type)
            w.byte(0x7D)
        }
        w.raw(",\"readonlyPaths\":")
        strings(linux.readonlyPaths)
        w.raw(",\"uidMappings\":")
        idMappings(&w, linux.uidMappings)
        w.raw("},\"mounts\":")
        w.array(mounts) { w, m in
            w.raw("{\"destination\":")
            w.string(m.destination)
            w.raw(",\"options\":")
            w.array(m.options) { w, s in w.string(s) }
            w.raw(",\"source\":")
            w.string(m.source)
            w.raw(",\"type\":")
            w.string(m.type)
            w.byte(0x7D)
        }
        w.raw(",\"ociVersion\":")
        w.string(ociVersion)
        w.raw(",\"process\":{\"args\":")
        strings(process.args)
        let c = process.capabilities
        w.raw(",\"capabilities\":{\"ambient\":")
        strings(c.ambient)
        w.raw(",\"bounding\":")
        strings(c.bounding)
        w.raw(",\"effective\":")
        strings(c.effective)
        w.raw(",\"inheritable\":")
        strings(c.inheritable)
        w.raw(",\"permitted\":")
        strings(c.permitted)
        w.raw("},\"cwd\":")
        w.string(process.cwd)
        w.raw(",\"env\":")
        strings(process.env)
        w.raw(process.noNewPrivileges ? ",\"noNewPrivileges\":true" : ",\"noNewPrivileges\":false")
        w.raw(process.terminal ? ",\"terminal\":true" : ",\"terminal\":false")
        w.raw(",\"user\":{\"gid\":")
        w.uint(UInt64(process.user.gid))
        w.raw(",\"uid\":")
        w.uint(UInt64(process.user.uid))
        w.raw("}},\"root\":{\"path\":")
        w.string(root.path)
        w.raw(root.readonly ? ",\"readonly\":true}}" : ",\"readonly\":false}}")
        return w.bytes
    }

    private func idMappings(_ w: inout JSONByteWriter, _ m: [IDMapping]) {
        w.array(m) { w, e in
            w.raw("{\"containerID\":")
            w.uint(UInt64(e.containerID))
            w.raw(",\"hostID\":")
            w.uint(UInt64(e.hostID))
            w.raw(",\"size\":")
            w.uint(UInt64(e.size))
            w.byte(0x7D)
        }
    }
}

/// What a run adds to the container besides the plan: binds of host files (engine helpers) and
/// tmpfs directories, and the program line that replaces the plan's command.
struct RuncAdditions {
    var binds: [(host: String, container: String)] = []
    var tmpfs: [String] = []
    var args: [String]? = nil
    /// NAME=value entries set on top of the plan's environment.
    var env: [String] = []
    /// Names removed from the plan's environment.
    var unsetEnv: [String] = []

    /// The plan's environment with these changes.
    func environment(_ plan: [String]) -> [String] {
        let name = { (e: String) in String(e.split(separator: "=", maxSplits: 1).first ?? "") }
        let replaced = Set(unsetEnv + env.map(name))
        return plan.filter { !replaced.contains(name($0)) } + env
    }
}

enum RuncConfigBuilder {
    /// Where everything udocker itself puts into a runc container lives (created in ROOT on first use).
    static let engineDir = "/.udocker/engine"

    /// The configuration for `plan`. The container's root (uid 0 in the user namespace) is the host
    /// user; a non-root --user is set up by the caller's `additions.args` (see UsernsHelper).
    static func make(_ plan: RunPlan, rootPath: String, terminal: Bool, capabilities: [String],
                     mqueue: Bool, hostname: String, additions: RuncAdditions) -> OCIConfig {
        let caps = OCIConfig.Capabilities(bounding: capabilities, effective: capabilities, inheritable: capabilities,
                                          permitted: capabilities, ambient: capabilities)
        let process = OCIConfig.Process(terminal: terminal, user: .init(uid: 0, gid: 0),
                                        args: additions.args ?? plan.command, env: additions.environment(plan.environment),
                                        cwd: plan.workdir, capabilities: caps, noNewPrivileges: true)
        let linux = OCIConfig.Linux(
            uidMappings: [.init(containerID: 0, hostID: getuid(), size: 1)],
            gidMappings: [.init(containerID: 0, hostID: getgid(), size: 1)],
            namespaces: ["ipc", "uts", "mount", "user"].map { .init(type: $0) },
            maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        return OCIConfig(process: process, root: .init(path: rootPath, readonly: false), hostname: hostname,
                         mounts: mounts(plan, mqueue: mqueue, additions: additions), linux: linux)
    }

    /// The kernel filesystems, then the plan's volumes (files and directories, devices included),
    /// passwd and group, then udocker's own files. Order matters: a bind under /dev must come
    /// after the /dev tmpfs.
    static func mounts(_ plan: RunPlan, mqueue: Bool, additions: RuncAdditions) -> [OCIConfig.Mount] {
        var m: [OCIConfig.Mount] = [
            .init(destination: "/proc", type: "none", source: "/proc", options: ["rbind"]),
            .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            .init(destination: "/dev/pts", type: "devpts", source: "devpts",
                  options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
            .init(destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        ]
        if mqueue {
            m.append(.init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]))
        }
        // Rootless runc cannot mount sysfs: the host's is bound read-only.
        m.append(.init(destination: "/sys", type: "none", source: "/sys", options: ["rbind", "nosuid", "noexec", "nodev", "ro"]))
        for v in plan.volumes {
            // /proc, /sys and /dev of udocker's system directories are the mounts above.
            if v.host == v.container && ["/proc", "/sys", "/dev"].contains(v.container) { continue }
            m.append(bind(v.host, v.container, readOnly: false))
        }
        if let p = plan.passwdFile { m.append(bind(p, "/etc/passwd", readOnly: false)) }
        if let g = plan.groupFile { m.append(bind(g, "/etc/group", readOnly: false)) }
        for t in additions.tmpfs {
            m.append(.init(destination: t, type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"]))
        }
        for b in additions.binds { m.append(bind(b.host, b.container, readOnly: true)) }
        return m
    }

    /// A recursive bind. A read-only one is remounted by runc, and in a user namespace a remount
    /// must repeat the flags the source mount has locked (nosuid, nodev, noexec, atime), else EPERM.
    static func bind(_ host: String, _ container: String, readOnly: Bool) -> OCIConfig.Mount {
        var options = ["rbind"]
        if readOnly {
            options.append("ro")
            var vfs = statvfs()
            if statvfs(host, &vfs) == 0 {
                // Linux's ST_* flag values (glibc declares most only under _GNU_SOURCE).
                let flags: [(UInt, String)] = [(2, "nosuid"), (4, "nodev"), (8, "noexec"), (1024, "noatime"),
                                               (2048, "nodiratime"), (4096, "relatime")]
                for (bit, name) in flags where UInt(vfs.f_flag) & bit != 0 { options.append(name) }
            }
        }
        return .init(destination: container, type: "none", source: host, options: options)
    }
}
