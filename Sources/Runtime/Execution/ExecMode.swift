// udocker's execution modes (P1 P2 F1-F4 R1-R3 S1): which engine family each uses and what it
// needs, and the mode a container runs in when none was chosen.

public enum ExecMode: String, Sendable, CaseIterable, CustomStringConvertible {
    case P1, P2, F1, F2, F3, F4, R1, R2, R3, S1

    public enum Family: String, Sendable { case proot, fakechroot, runc, singularity }

    public var family: Family {
        switch self {
        case .P1, .P2: return .proot
        case .F1, .F2, .F3, .F4: return .fakechroot
        case .R1, .R2, .R3: return .runc
        case .S1: return .singularity
        }
    }

    /// Parses a mode as users write it ("p1", "F3").
    public init?(parsing text: String) {
        guard let m = ExecMode(rawValue: text.uppercased()) else { return nil }
        self = m
    }

    /// F3 and F4 change the ELF headers of the container's files.
    public var patchesELF: Bool { self == .F3 || self == .F4 }

    /// R2 and R3 run PRoot inside the runc container (for uid changes the user namespace cannot map).
    public var prootInside: Bool { self == .R2 || self == .R3 }

    /// P2 and R3 run PRoot without its seccomp acceleration.
    public var prootNoSeccomp: Bool { self == .P2 || self == .R3 }

    public var description: String { rawValue }

    /// One line per mode, as `setup --help` and `info` show them.
    public var summary: String {
        switch self {
        case .P1: return "proot accelerated mode using seccomp filtering (default)"
        case .P2: return "proot accelerated mode disabled"
        case .F1: return "fakechroot starting executables via direct loader invocation"
        case .F2: return "like F1 plus protected environment and modified ld.so"
        case .F3: return "fakechroot plus patching of elf headers in binaries and libs"
        case .F4: return "like F3 plus support for newly created executables"
        case .R1: return "runc/crun using rootless namespaces"
        case .R2: return "proot with root emulation running on top of runc/crun"
        case .R3: return "same as R2 but with proot accelerated mode disabled"
        case .S1: return "apptainer/singularity found on the host"
        }
    }

    /// The mode a new container gets: `override_default_execution_mode` when set, else udocker's
    /// per-architecture default (`default_execution_modes`; P1 on x86_64).
    public static func defaultMode(_ configuration: Configuration) -> ExecMode {
        if let o = configuration.string("override_default_execution_mode"), let m = ExecMode(parsing: o) { return m }
        return .P1
    }
}
