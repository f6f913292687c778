// Reads what the Fakechroot modes need from an ELF file's headers: its program interpreter, its
// DT_NEEDED count and its RPATH/RUNPATH, without starting a process per file.
#if canImport(Glibc)
import Glibc
#endif

public struct ElfFile: Sendable, Equatable {
    /// PT_INTERP, e.g. "/lib64/ld-linux-x86-64.so.2"; nil for static programs and libraries.
    public var interpreter: String?
    /// How many libraries it needs (DT_NEEDED).
    public var needed: Int
    public var rpath: String?
    public var runpath: String?
    /// e_machine, to tell the container's architectures apart.
    public var machine: UInt16

    /// A dynamically linked program (one the kernel starts through a loader).
    public var isDynamicProgram: Bool { interpreter != nil }

    /// Whether `bytes` start like an ELF file.
    public static func hasMagic(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x7f && bytes[1] == 0x45 && bytes[2] == 0x4c && bytes[3] == 0x46
    }

    /// The ELF facts of the file at `path` (not following a final symlink), or nil when it is not
    /// a readable ELF executable or shared object.
    public static func read(_ path: String) -> ElfFile? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = close(fd) }
        return read(fd: fd)
    }

    /// As `read(_:)` on an open descriptor (read with pread, the offset is left alone).
    public static func read(fd: Int32) -> ElfFile? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size >= 52 else { return nil }
        let size = UInt64(st.st_size)
        let reader = Reader(fd: fd, size: size)
        guard let ident = reader.bytes(0, 16), hasMagic(ident) else { return nil }
        let is64 = ident[4] == 2
        guard ident[4] == 1 || is64 else { return nil }
        let little = ident[5] == 1
        guard ident[5] == 1 || ident[5] == 2 else { return nil }
        let e = Endian(little: little)
        guard let header = reader.bytes(0, is64 ? 64 : 52) else { return nil }
        let type = e.u16(header, 16)
        guard type == 2 || type == 3 else { return nil }  // ET_EXEC, ET_DYN
        let machine = e.u16(header, 18)
        let phoff = is64 ? e.u64(header, 32) : UInt64(e.u32(header, 28))
        let phentsize = Int(e.u16(header, is64 ? 54 : 42))
        let phnum = Int(e.u16(header, is64 ? 56 : 44))
        guard phnum > 0, phnum < 4096, phentsize >= (is64 ? 56 : 32),
              let table = reader.bytes(phoff, phentsize * phnum) else { return nil }

        var interpreter: String? = nil
        var dynamic: (offset: UInt64, size: UInt64)? = nil
        var loads: [(vaddr: UInt64, offset: UInt64, filesz: UInt64)] = []
        for i in 0..<phnum {
            let b = i * phentsize
            let ptype = e.u32(table, b)
            let offset = is64 ? e.u64(table, b + 8) : UInt64(e.u32(table, b + 4))
            let vaddr = is64 ? e.u64(table, b + 16) : UInt64(e.u32(table, b + 8))
            let filesz = is64 ? e.u64(table, b + 32) : UInt64(e.u32(table, b + 16))
            switch ptype {
            case 1: loads.append((vaddr, offset, filesz))                     // PT_LOAD
            case 2: dynamic = (offset, filesz)                                 // PT_DYNAMIC
            case 3:                                                            // PT_INTERP
                if filesz > 0, filesz < 4096, let raw = reader.bytes(offset, Int(filesz)) {
                    interpreter = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
            default: continue
            }
        }
        var needed = 0
        var rpathOffset: UInt64? = nil, runpathOffset: UInt64? = nil, strtab: UInt64? = nil
        if let dyn = dynamic, dyn.size > 0, dyn.size < 1 << 20, let entries = reader.bytes(dyn.offset, Int(dyn.size)) {
            let width = is64 ? 16 : 8
            var i = 0
            while i + width <= entries.count {
                let tag = is64 ? e.u64(entries, i) : UInt64(e.u32(entries, i))
                let value = is64 ? e.u64(entries, i + 8) : UInt64(e.u32(entries, i + 4))
                i += width
                switch tag {
                case 0: i = entries.count                    // DT_NULL
                case 1: needed += 1                          // DT_NEEDED
                case 5: strtab = value                       // DT_STRTAB (an address)
                case 15: rpathOffset = value                 // DT_RPATH
                case 29: runpathOffset = value               // DT_RUNPATH
                default: continue
                }
            }
        }
        // DT_STRTAB holds an address: find the file offset through the PT_LOAD segment holding it.
        let strtabFileOffset: UInt64? = strtab.flatMap { addr in
            loads.first { addr >= $0.vaddr && addr < $0.vaddr + $0.filesz }.map { $0.offset + (addr - $0.vaddr) }
        }
        func string(_ off: UInt64?) -> String? {
            guard let off, let base = strtabFileOffset else { return nil }
            return reader.cString(base + off)
        }
        return ElfFile(interpreter: interpreter, needed: needed, rpath: string(rpathOffset),
                       runpath: string(runpathOffset), machine: machine)
    }

    private struct Reader {
        let fd: Int32
        let size: UInt64

        func bytes(_ offset: UInt64, _ count: Int) -> [UInt8]? {
            guard count >= 0, offset <= size, UInt64(count) <= size - offset else { return nil }
            var out = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let n = out.withUnsafeMutableBytes { buf -> Int in
                    guard let base = buf.baseAddress else { return -1 }
                    return pread(fd, base + done, count - done, off_t(offset) + off_t(done))
                }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return nil }
                done += n
            }
            return out
        }

        func cString(_ offset: UInt64) -> String? {
            var out: [UInt8] = []
            var at = offset
            while out.count < 65536, let chunk = bytes(at, Int(min(256, size > at ? size - at : 0))), !chunk.isEmpty {
                if let nul = chunk.firstIndex(of: 0) {
                    out += chunk[..<nul]
                    return String(decoding: out, as: UTF8.self)
                }
                out += chunk
                at += UInt64(chunk.count)
            }
            return nil
        }
    }

    private struct Endian {
        let little: Bool
        func u16(_ b: [UInt8], _ i: Int) -> UInt16 {
            let v = UInt16(b[i]) | UInt16(b[i + 1]) << 8
            return little ? v : v.byteSwapped
        }
        func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(b[i + k]) << (8 * k) }
            return little ? v : v.byteSwapped
        }
        func u64(_ b: [UInt8], _ i: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(b[i + k]) << (8 * k) }
            return little ? v : v.byteSwapped
        }
    }
}
