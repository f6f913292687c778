// Reading an image archive (docker save, OCI layout tar) in one streaming pass without extracting
// anything by name: blobs go into the store by digest (verified), small files stay in memory, links
// are remembered and resolved later strictly inside the archive.
import CArchive
import CAS
#if canImport(Glibc)
import Glibc
#endif

/// The content of an image archive, by normalised path.
final class ArchiveScan {
    enum Item {
        /// A small file, kept in memory.
        case bytes([UInt8])
        /// A file stored in the store as this blob.
        case blob(Digest)
        /// A symlink (target as written in the archive).
        case symlink(String)
        /// A hard link to another entry (normalised path).
        case hardlink(String)
        case directory
    }

    /// Files up to this size (not under blobs/sha256/) are kept in memory: JSON, VERSION, small layers.
    static let memoryFileLimit: Int64 = 16 << 20
    /// All in-memory files together; beyond this, files go to the store too.
    static let memoryTotalLimit: Int64 = 256 << 20

    let sourceName: String
    private(set) var items: [String: Item] = [:]
    /// What was left out and why (hostile names, unsupported entry types).
    private(set) var notes: [String] = []
    private var memoryUsed: Int64 = 0
    private let assembly: ImageAssembly

    init(sourceName: String, assembly: ImageAssembly) {
        self.sourceName = sourceName
        self.assembly = assembly
    }

    /// Reads the archive on `fd` (plain tar, or tar compressed with gzip, zstd, xz or bzip2).
    func read(fd: Int32) throws {
        try TarEntries.read(fd: fd, source: sourceName) { tar, entry, _ in
            let raw = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            guard let path = Self.normalize(raw) else {
                notes.append("ignored archive entry '\(raw)': its path leads outside the archive")
                return
            }
            if path.isEmpty { return }
            if let target = archive_entry_hardlink(entry).map({ String(cString: $0) }) {
                guard let t = Self.normalize(target), !t.isEmpty else {
                    notes.append("ignored archive entry '\(raw)': a hard link to '\(target)', outside the archive")
                    return
                }
                items[path] = .hardlink(t)
                return
            }
            switch mode_t(archive_entry_filetype(entry)) {
            case S_IFDIR:
                items[path] = .directory
            case S_IFLNK:
                items[path] = .symlink(archive_entry_symlink(entry).map { String(cString: $0) } ?? "")
            case S_IFREG:
                items[path] = try readFile(tar, path: path, size: archive_entry_size(entry))
            default:
                notes.append("ignored archive entry '\(raw)': not a file, directory or link")
            }
        }
    }

    private func readFile(_ tar: TarEntries, path: String, size: Int64) throws -> Item {
        let named = Self.blobDigest(path)
        if named == nil && size <= Self.memoryFileLimit && memoryUsed + size <= Self.memoryTotalLimit {
            var bytes = [UInt8]()
            bytes.reserveCapacity(Int(max(size, 0)))
            try tar.pump(path) { bytes.append(contentsOf: $0) }
            memoryUsed += Int64(bytes.count)
            return .bytes(bytes)
        }
        let store = assembly.store
        if let named {
            // Reserved before it is stored, as a pull does, so GC cannot take it in between.
            try assembly.hold([named])
            if store.hasBlob(named) {
                tar.skip()
                return .blob(named)
            }
        }
        let w = try BlobContent.cas { try store.beginBlob(expected: named) }
        try tar.pump(path) { chunk in try BlobContent.cas { try w.write(chunk) } }
        let r: BlobRecord
        do { r = try w.commit() } catch CASError.digestMismatch(let expected, let actual) {
            throw RuntimeError.badArchive(sourceName, "\(path) does not match its digest (its content is \(actual), the name says \(expected)); the archive is corrupt or was tampered with, nothing of it was loaded")
        }
        try assembly.hold([r.digest])
        return .blob(r.digest)
    }

    /// The digest a blobs/sha256/<hex> path names, else nil.
    static func blobDigest(_ path: String) -> Digest? {
        let parts = path.split(separator: "/")
        guard parts.count == 3, parts[0] == "blobs", parts[1] == "sha256" else { return nil }
        return try? Digest(parsing: "sha256:" + parts[2])
    }

    /// A path inside the archive in canonical form ("a/b"; "" is the top), or nil when it is
    /// absolute or climbs above the top with "..".
    static func normalize(_ raw: String) -> String? {
        if raw.hasPrefix("/") { return nil }
        var out = [Substring]()
        for c in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if out.isEmpty { return nil }
                out.removeLast()
                continue
            }
            out.append(c)
        }
        return out.joined(separator: "/")
    }

    /// Resolves `path` inside the archive: symlinks are followed relative to the link's directory
    /// (an absolute target, or one that climbs above the top, is refused: the archive must not name
    /// host files), hard links to their target. Returns the file content, or nil when missing.
    func content(_ path: String) throws -> Item? {
        guard var current = Self.normalize(path) else {
            throw RuntimeError.badArchive(sourceName, "'\(path)' points outside the archive")
        }
        for _ in 0..<40 {
            guard let item = items[current] else {
                // A symlinked directory on the way ("dir/x" where dir is a link) resolves too.
                guard let resolved = try resolveParents(current) else { return nil }
                if resolved == current { return nil }
                current = resolved
                continue
            }
            switch item {
            case .bytes, .blob: return item
            case .directory: return nil
            case .hardlink(let t): current = t
            case .symlink(let target):
                guard !target.hasPrefix("/"), let next = Self.normalize(Self.sibling(current, target)) else {
                    throw RuntimeError.badArchive(sourceName, "'\(path)' is a link to '\(target)', outside the archive; refusing to read it")
                }
                current = next
            }
        }
        throw RuntimeError.badArchive(sourceName, "'\(path)' is a loop of links")
    }

    /// `target` taken relative to the directory holding `path`.
    static func sibling(_ path: String, _ target: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return target }
        return String(path[..<slash]) + "/" + target
    }

    /// `path` with its first symlinked parent directory replaced by the link's target, or nil.
    private func resolveParents(_ path: String) throws -> String? {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count > 1 else { return nil }
        for i in 1..<parts.count {
            let prefix = parts[0..<i].joined(separator: "/")
            if case .symlink(let target)? = items[prefix] {
                guard !target.hasPrefix("/"), let dir = Self.normalize(Self.sibling(prefix, target)) else {
                    throw RuntimeError.badArchive(sourceName, "'\(path)' goes through a link to '\(target)', outside the archive; refusing to read it")
                }
                return Self.normalize(dir + "/" + parts[i...].joined(separator: "/"))
            }
        }
        return nil
    }

    /// The bytes of a (small) file: from memory, or read from its blob in the store.
    func bytes(_ path: String, limit: Int = 64 << 20) throws -> [UInt8]? {
        switch try content(path) {
        case .bytes(let b)?: return b
        case .blob(let d)?:
            let p = assembly.store.blobPath(d)
            var st = stat()
            if stat(p, &st) == 0 && st.st_size > limit {
                throw RuntimeError.badArchive(sourceName, "\(path) is \(st.st_size) bytes, too big for an image's JSON file")
            }
            return try BlobContent.cas { try FileIO.readFile(p) }
        default: return nil
        }
    }

    /// The stored blob of a file (small files are stored now); nil when missing.
    func blob(_ path: String, mediaType: String? = nil) throws -> Digest? {
        switch try content(path) {
        case .bytes(let b)?: return try assembly.ingest(b, mediaType: mediaType).digest
        case .blob(let d)?: return d
        default: return nil
        }
    }
}
