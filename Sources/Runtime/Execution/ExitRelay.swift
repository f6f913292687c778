// The exit relay (Preload/exit_relay.c) PRoot starts in P1, P2, R2 and R3, so that a program ended by
// signal N gives 128+N as in every other mode (PRoot alone gives 255), and the helper files the
// EmbedPreload plugin embeds, written once into the repository's lib directory.
#if canImport(Glibc)
import Glibc
#endif
import CAS

public enum ExitRelay {
    /// Where P modes show the relay inside the container (PRoot's binds are virtual: nothing is left
    /// in the container's tree); R2/R3 bind it under the engine directory.
    public static let containerPath = "/dev/.udocker-exit-relay"

    /// The relay's host path under `libdir`, written there if it is not there yet.
    public static func install(libdir: String) throws -> String {
        try EmbeddedFile.install(libdir: libdir, name: "udocker-exit-relay", digest: exitRelayDigest, hex: exitRelayHex)
    }

    /// The command line that starts `command` (its program at `executable`) through the relay at
    /// `relay`, with `environment` ("NAME=value") added to the program's environment only.
    static func argv(relay: String, executable: String, command: [String], environment: [String] = []) -> [String] {
        [relay] + environment.flatMap { ["-e", $0] } + [executable] + command
    }
}

/// A helper file embedded as hex by the EmbedPreload plugin.
enum EmbeddedFile {
    /// `libdir`/`name`-<digest prefix> (the suffix of `name`, e.g. ".so", kept last), written with the
    /// bytes of `hex` when missing. Named by the digest, so an upgrade of udocker never uses an older one.
    static func install(libdir: String, name: String, suffix: String = "", digest: String, hex: String) throws -> String {
        let path = libdir + "/" + name + "-" + String(digest.prefix(16)) + suffix
        if !FileIO.exists(path) {
            try ContainerStore.io {
                try FileIO.mkdirs(libdir)
                try FileIO.writeAtomically(path, decode(hex), mode: 0o755)
            }
        }
        return path
    }

    /// The bytes of od's lower-case hex.
    static func decode(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8? = nil
        for c in hex.utf8 {
            let v: UInt8 = c <= 57 ? c - 48 : c - 87   // "0"-"9", "a"-"f"
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return out
    }
}
