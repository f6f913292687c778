// Test fixtures for materialisation: a minimal ustar writer (so tests can make whiteouts, hostile
// symlinks and device nodes an unprivileged tar cannot), a real store the tars are unpacked into,
// and a listing of a created tree.
import CAS
import Testing
@testable import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// One tar entry.
struct TarItem {
    enum Kind { case file([UInt8]), dir, symlink(String), hardlink(String), fifo, char(UInt32, UInt32), block(UInt32, UInt32) }
    var path: String
    var kind: Kind
    var mode: UInt32
    var mtime: Int = 1_600_000_000

    static func file(_ p: String, _ text: String, mode: UInt32 = 0o644, mtime: Int = 1_600_000_000) -> TarItem {
        TarItem(path: p, kind: .file(Array(text.utf8)), mode: mode, mtime: mtime)
    }
    static func dir(_ p: String, mode: UInt32 = 0o755) -> TarItem { TarItem(path: p, kind: .dir, mode: mode) }
    static func symlink(_ p: String, _ t: String) -> TarItem { TarItem(path: p, kind: .symlink(t), mode: 0o777) }
    static func hardlink(_ p: String, _ t: String) -> TarItem { TarItem(path: p, kind: .hardlink(t), mode: 0o644) }
}

/// A ustar archive, byte for byte as given (no path sanitising).
func ustar(_ items: [TarItem]) -> [UInt8] {
    var out = [UInt8]()
    for it in items {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, _ off: Int, _ len: Int) {
            let b = Array(s.utf8)
            precondition(b.count <= len, "tar field too long: \(s)")
            for (i, c) in b.enumerated() { h[off + i] = c }
        }
        func octal(_ v: Int, _ off: Int, _ len: Int) {
            let s = String(v, radix: 8)
            put(String(repeating: "0", count: len - 1 - s.count) + s, off, len - 1)
        }
        var data = [UInt8]()
        var type: Character = "0"
        var link = ""
        var dev = (0, 0)
        switch it.kind {
        case .file(let d): data = d
        case .dir: type = "5"
        case .symlink(let t): type = "2"; link = t
        case .hardlink(let t): type = "1"; link = t
        case .fifo: type = "6"
        case .char(let a, let b): type = "3"; dev = (Int(a), Int(b))
        case .block(let a, let b): type = "4"; dev = (Int(a), Int(b))
        }
        put(it.path, 0, 100)
        octal(Int(it.mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(data.count, 124, 12)
        octal(it.mtime, 136, 12)
        h[156] = UInt8(ascii: type.unicodeScalars.first ?? "0")
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        octal(dev.0, 329, 8)
        octal(dev.1, 337, 8)
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let s = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - s.count) + s, 148, 6)
        h[154] = 0
        out += h
        out += data
        if data.count % 512 != 0 { out += [UInt8](repeating: 0, count: 512 - data.count % 512) }
    }
    out += [UInt8](repeating: 0, count: 1024)
    return out
}

/// A store in a temp dir, layers made from tar items, and containers materialised from them.
final class LayerFixture {
    let dir: String
    let store: Store

    init(_ label: String = "mat") throws {
        var template = Array("/tmp/udocker-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
        precondition(made != nil)
        dir = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        store = try Store.create(at: dir + "/store")
    }

    deinit { try? ContainerTree.remove(dir) }

    /// Stores the tar of `items` and unpacks it; returns its diff_id.
    func layer(_ items: [TarItem]) throws -> Digest {
        let blob = try store.ingest(bytes: ustar(items))
        return try store.unpackLayer(blob: blob.digest).diffID
    }

    private var count = 0

    /// Materialises `layers` into a new directory; returns its path and the report.
    func materialize(_ layers: [Digest], _ mode: MaterializeMode, linkDirs: [String] = MaterializePolicy.defaultLinkDirs,
                     workers: Int = WalkThreads.default) throws -> (root: String, report: MaterializeReport) {
        count += 1
        let root = dir + "/c\(count)-\(mode.rawValue)"
        try FileIO.mkdirs(root, mode: 0o700)
        let report = try Materializer(store: store).materialize(layers: layers, into: root,
                                                                policy: MaterializePolicy(mode: mode, linkDirs: linkDirs),
                                                                workers: workers)
        return (root, report)
    }

    func storeFile(_ layer: Digest, _ path: String) -> String { store.layerRoot(layer) + "/" + path }
}

/// Every path below `root` with its type: "d", "f", "l", "p" (FIFO), "?" (other); symlinks not followed.
func listTree(_ root: String) throws -> [String: String] {
    var out = [String: String]()
    func walk(_ rel: String) throws {
        let full = rel.isEmpty ? root : root + "/" + rel
        for name in try FileIO.listDirectory(full) {
            let p = rel.isEmpty ? name : rel + "/" + name
            var st = stat()
            guard lstat(root + "/" + p, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR: out[p] = "d"; try walk(p)
            case S_IFREG: out[p] = "f"
            case S_IFLNK: out[p] = "l"
            case S_IFIFO: out[p] = "p"
            default: out[p] = "?"
            }
        }
    }
    try walk("")
    return out
}

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func readText(_ path: String) throws -> String {
    String(decoding: try FileIO.readFile(path), as: UTF8.self)
}
