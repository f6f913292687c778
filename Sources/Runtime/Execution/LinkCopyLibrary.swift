// The preload library of sealed containers (Preload/link_copy.c): written once into the repository's
// lib directory, and given to runs of containers whose linked files belong to the store's subuid.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public enum LinkCopyLibrary {
    /// Where P and R modes show the library inside the container: /dev is a tmpfs in R modes and
    /// PRoot's binds are virtual, so nothing is left in the container's tree.
    public static let containerPath = "/dev/.udocker-link-copy.so"

    /// The library's bytes, from the hex the EmbedPreload plugin generated.
    static var bytes: [UInt8] { EmbeddedFile.decode(preloadLibraryHex) }

    /// The library's host path under `libdir`, written there (named by its digest, which the plugin
    /// computed, so an upgrade of udocker never loads an older one) if it is not there yet.
    public static func install(libdir: String) throws -> String {
        try EmbeddedFile.install(libdir: libdir, name: "udocker-link-copy", suffix: ".so",
                                 digest: preloadLibraryDigest, hex: preloadLibraryHex)
    }

    /// Whether the program the run starts is for this machine (a library of another architecture
    /// would make the loader print an error on every start).
    static func suits(hostProgram path: String) -> Bool {
        guard let program = ElfFile.read(path) else { return true }   // a script: its interpreter is the container's
        return program.machine == hostMachine
    }

    /// e_machine of the library (built for the machine udocker runs on).
    static var hostMachine: UInt16 {
        #if arch(x86_64)
        return 62
        #elseif arch(arm64)
        return 183
        #else
        return ElfFile.read("/proc/self/exe")?.machine ?? 0
        #endif
    }

    /// `LD_PRELOAD` with `library` added after what `value` already preloads.
    static func preloadValue(_ value: String?, adding library: String) -> String {
        guard let v = value, !v.isEmpty else { return library }
        return v + ":" + library
    }
}
