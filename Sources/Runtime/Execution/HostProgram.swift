// A host program (PRoot for R2/R3) made runnable inside a container whatever its libc: the program,
// its ELF interpreter and its libraries are bound read-only under /.udocker/engine and it is started
// through the host's own loader with --library-path, so the container's files are never used for it.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation

struct HostProgram {
    /// (host file, container path) binds.
    let binds: [(host: String, container: String)]
    /// The command line that starts the program inside the container (before its own arguments).
    let argv: [String]

    /// `program` (a host path) to appear as `<engineDir>/<name>`. Static programs need only themselves.
    init(program: String, name: String, engineDir: String, cache: ProbeCache) throws {
        let inside = engineDir + "/" + name
        // Cached: PRoot binaries run to megabytes and this runs for every container start.
        // "" stands for a static program; an unreadable one is asked again and its error thrown.
        let cached = cache.answerIfKnown(program, "interpreter") { () -> String? in
            do { return try Self.interpreter(of: program) ?? "" } catch { return nil }
        }
        let interpreter = try cached ?? Self.interpreter(of: program) ?? ""
        guard !interpreter.isEmpty else {
            binds = [(program, inside)]
            argv = [inside]
            return
        }
        let libraries = try Self.libraries(of: program, interpreter: interpreter, cache: cache)
        let loader = engineDir + "/" + FileIO.basename(of: interpreter)
        var b: [(host: String, container: String)] = [(program, inside), (interpreter, loader)]
        for (soname, path) in libraries { b.append((path, engineDir + "/lib/" + soname)) }
        binds = b
        argv = [loader, "--library-path", engineDir + "/lib", inside]
    }

    /// The PT_INTERP of an ELF file, nil for a static one.
    static func interpreter(of path: String) throws -> String? {
        let bytes: [UInt8]
        do { bytes = try FileIO.readFile(path) } catch {
            throw RuntimeError.engineMissing(tool: FileIO.basename(of: path), why: "\(path) cannot be read (\(error))")
        }
        guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            throw RuntimeError.executionFailed("using \(path) inside the container", "it is not an ELF program")
        }
        guard bytes[4] == 2, bytes[5] == 1 else {
            throw RuntimeError.executionFailed("using \(path) inside the container", "only 64-bit little-endian ELF programs are supported")
        }
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u64(_ o: Int) -> Int {
            var v = 0
            for i in (0..<8).reversed() { v = v << 8 | Int(bytes[o + i]) }
            return v
        }
        let phoff = u64(0x20), phentsize = u16(0x36), phnum = u16(0x38)
        for i in 0..<phnum {
            let ph = phoff + i * phentsize
            guard ph >= 0, ph + 56 <= bytes.count else { break }
            let type = Int(bytes[ph]) | Int(bytes[ph + 1]) << 8 | Int(bytes[ph + 2]) << 16 | Int(bytes[ph + 3]) << 24
            guard type == 3 else { continue }
            let offset = u64(ph + 8), size = u64(ph + 32)
            guard offset >= 0, size > 0, offset + size <= bytes.count else { break }
            return String(decoding: bytes[offset..<offset + size].prefix { $0 != 0 }, as: UTF8.self)
        }
        return nil
    }

    /// (soname, host path) of every library the program loads, as the host's loader resolves them
    /// (`ld.so --list`, what ldd runs); cached per program binary.
    static func libraries(of program: String, interpreter: String, cache: ProbeCache) throws -> [(String, String)] {
        let ask = { () -> String? in
            guard let r = Launcher.capture([interpreter, "--list", program]), r.status == 0 else { return nil }
            return r.output
        }
        var listing = cache.answerIfKnown(program, "libraries", ask: ask)
        var parsed = listing.map(parse) ?? []
        // A library replaced since the answer was cached: ask again.
        if parsed.contains(where: { !FileIO.exists($0.1) }) {
            listing = ask()
            parsed = listing.map(parse) ?? []
        }
        guard listing != nil else {
            throw RuntimeError.executionFailed("finding the libraries of \(program)", "\(interpreter) --list \(program) failed; use a statically linked PRoot (udocker install) or set UDOCKER_USE_PROOT_EXECUTABLE")
        }
        return parsed
    }

    /// Lines "libtalloc.so.2 => /lib/x86_64-linux-gnu/libtalloc.so.2 (0x…)"; the vdso and the
    /// loader's own line have no "=> /path".
    static func parse(_ listing: String) -> [(String, String)] {
        var out: [(String, String)] = []
        let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 }
        func trimmed(_ b: ArraySlice<UInt8>) -> String {
            var t = b[...]
            while let f = t.first, isSpace(f) { t = t.dropFirst() }
            while let l = t.last, isSpace(l) { t = t.dropLast() }
            return String(decoding: t, as: UTF8.self)
        }
        for line in Array(listing.utf8).split(separator: 0x0A) {
            let text = String(decoding: line, as: UTF8.self)
            guard let at = text.byteOffset(of: " => ") else { continue }
            let bytes = Array(line)
            let name = trimmed(bytes[..<at])
            var path = trimmed(bytes[(at + 4)...])
            if let paren = path.byteOffset(of: " (") { path = String(decoding: Array(path.utf8)[..<paren], as: UTF8.self) }
            guard path.hasPrefix("/"), !name.isEmpty, !name.utf8.contains(0x2F) else { continue }
            if !out.contains(where: { $0.0 == name }) { out.append((name, path)) }
        }
        return out
    }
}
