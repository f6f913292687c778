// The store's files, which are the truth the index is built from: scanning blobs, layers and refs,
// reading their metadata, and writing small files atomically through STORE/tmp.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// The contents of refs/<sha256 of holder>.json.
struct RefFile: Codable {
    var format: Int
    var holder: String
    var digests: [Digest]
}

/// The contents of store.json.
struct StoreFile: Codable {
    var format: Int
    var id: String
    /// A group store's Unix group (name and gid); absent for a store of one user.
    var group: String? = nil
    var gid: UInt32? = nil
}

extension StoreLayout {
    /// Media type of a blob, when one was given at ingest: a sidecar beside the blob.
    func blobTypePath(_ d: Digest) -> String { blobPath(d) + ".type" }
    /// Counter bumped before every ref change, so an index can tell its refs are stale.
    var refsGenerationFile: String { refsDir + "/generation" }
    var layersLock: String { locksDir + "/layers.lock" }
    var indexLock: String { locksDir + "/index.lock" }
    /// One byte per claimed digest (Store+Claims.swift).
    var claimsLock: String { locksDir + "/claims.lock" }
    func refFile(holderHash: String) -> String { refsDir + "/" + holderHash + ".json" }
}

struct StoreFiles {
    let layout: StoreLayout

    static func isHex64(_ s: Substring) -> Bool {
        s.utf8.count == 64 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func isHex2(_ s: String) -> Bool {
        s.utf8.count == 2 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func jsonEncoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func encode<T: Encodable>(_ v: T) throws -> [UInt8] {
        do { return Array(try jsonEncoder().encode(v)) } catch {
            throw CASError.internalFailure("cannot encode JSON: \(error)")
        }
    }

    /// layer.json: the same bytes as the generic encoder, written by hand because a layer of many files
    /// made JSONEncoder a large part of the unpack. Declared `throws` like the generic one, so call
    /// sites pick this overload without change.
    static func encode(_ m: LayerManifest) throws -> [UInt8] {
        LayerManifestJSON.encode(m)
    }

    static func mtime(_ st: stat) -> Int64 { Int64(st.st_mtim.tv_sec) }

    // MARK: blobs

    /// Every blob file's digest, sorted. Other names in the fan-out directories are ignored.
    func blobDigests() throws -> [Digest] {
        var out = [Digest]()
        for pfx in try FileIO.listDirectory(layout.blobsDir) where StoreFiles.isHex2(pfx) {
            for name in try FileIO.listDirectory(layout.blobsDir + "/" + pfx)
            where StoreFiles.isHex64(Substring(name)) && name.hasPrefix(pfx) {
                if let d = try? Digest(parsing: name, allowBare: true) { out.append(d) }
            }
        }
        return out.sorted()
    }

    /// Media-type sidecars whose blob is gone (left by a crash between the two renames).
    func orphanTypeFiles() throws -> [String] {
        var out = [String]()
        for pfx in try FileIO.listDirectory(layout.blobsDir) where StoreFiles.isHex2(pfx) {
            let dir = layout.blobsDir + "/" + pfx
            for name in try FileIO.listDirectory(dir) where name.hasSuffix(".type") {
                let hex = name.dropLast(5)
                if !StoreFiles.isHex64(hex) || !FileIO.exists(dir + "/" + hex) { out.append(dir + "/" + name) }
            }
        }
        return out.sorted()
    }

    func mediaType(_ d: Digest) -> String? {
        guard let b = try? FileIO.readFile(layout.blobTypePath(d)) else { return nil }
        let s = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }

    /// The record of a blob as its files say (nil when the blob file is absent).
    func blobRecord(_ d: Digest, knownType: String?? = nil) -> BlobRecord? {
        var st = stat()
        guard stat(layout.blobPath(d), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let type: String?
        if let known = knownType { type = known } else { type = mediaType(d) }
        return BlobRecord(digest: d, size: UInt64(st.st_size), mediaType: type, lastUse: StoreFiles.mtime(st))
    }

    // MARK: layers

    /// Every unpacked layer's diff_id (directories named by 64 hex digits), sorted.
    func layerDiffIDs() throws -> [Digest] {
        try FileIO.listDirectory(layout.layersDir)
            .filter { StoreFiles.isHex64(Substring($0)) }
            .compactMap { try? Digest(parsing: $0, allowBare: true) }
            .sorted()
    }

    func layerManifestBytes(_ diffID: Digest) throws -> [UInt8]? {
        do { return try FileIO.readFile(layout.layerManifest(diffID)) } catch CASError.io(_, _, ENOENT) { return nil }
    }

    func decodeManifest(_ bytes: [UInt8], path: String) throws -> LayerManifest {
        do { return try JSONDecoder().decode(LayerManifest.self, from: Data(bytes)) } catch {
            throw CASError.badLayer("\(path) cannot be read (\(error)); run 'udocker store verify --repair' to remove the layer, it is unpacked again on the next pull")
        }
    }

    /// The manifest of an unpacked layer, or nil when the layer is not in the store.
    func layerManifest(_ diffID: Digest) throws -> LayerManifest? {
        guard let b = try layerManifestBytes(diffID) else { return nil }
        return try decodeManifest(b, path: layout.layerManifest(diffID))
    }

    func layerJSONMtime(_ diffID: Digest) -> Int64? {
        var st = stat()
        guard stat(layout.layerManifest(diffID), &st) == 0 else { return nil }
        return StoreFiles.mtime(st)
    }

    static func record(_ m: LayerManifest, lastUse: Int64) -> LayerRecord {
        LayerRecord(diffID: m.diffID, fileCount: m.fileCount, bytes: m.totalBytes,
                    blobs: Array(Set(m.blobs)).sorted(), lastUse: lastUse)
    }

    // MARK: refs

    /// All refs as their files say. Unreadable files are skipped (verify reports them).
    func refs() throws -> [String: [Digest]] {
        var out = [String: [Digest]]()
        for name in try FileIO.listDirectory(layout.refsDir) where name.hasSuffix(".json") {
            guard let r = try? readRefFile(layout.refsDir + "/" + name) else { continue }
            out[r.holder] = Array(Set(r.digests)).sorted()
        }
        return out
    }

    /// One ref file: its holder and digests, who wrote it and when (GC keeps a member's private layer
    /// copies for what that member's holders reference, and lets another host's reservations expire).
    struct RefFileInfo {
        var holder: String
        var digests: [Digest]
        var uid: UInt32
        var mtime: Int64
    }

    func refFiles() throws -> [RefFileInfo] {
        var out = [RefFileInfo]()
        for name in try FileIO.listDirectory(layout.refsDir) where name.hasSuffix(".json") {
            let path = layout.refsDir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, let r = try? readRefFile(path) else { continue }
            out.append(RefFileInfo(holder: r.holder, digests: Array(Set(r.digests)).sorted(), uid: st.st_uid,
                                   mtime: Int64(st.st_mtim.tv_sec)))
        }
        return out
    }

    /// Ref files that cannot be parsed or whose name does not match their holder.
    func badRefFiles() throws -> [String] {
        var out = [String]()
        for name in try FileIO.listDirectory(layout.refsDir) where name.hasSuffix(".json") {
            let path = layout.refsDir + "/" + name
            guard let r = try? readRefFile(path), name == Holder.fileName(r.holder) else { out.append(path); continue }
        }
        return out
    }

    func readRefFile(_ path: String) throws -> RefFile {
        let b = try FileIO.readFile(path)
        do { return try JSONDecoder().decode(RefFile.self, from: Data(b)) } catch {
            throw CASError.internalFailure("ref file \(path) is malformed: \(error)")
        }
    }

    func refsGeneration() -> UInt64 {
        guard let b = try? FileIO.readFile(layout.refsGenerationFile) else { return 0 }
        return UInt64(String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    // MARK: snapshot

    /// Scans everything the index holds. Refs are read under the refs lock so the generation and
    /// the ref files agree.
    func snapshot() throws -> IndexSnapshot {
        var s = IndexSnapshot()
        for d in try blobDigests() {
            if let r = blobRecord(d) { s.blobs.append(r) }
        }
        let hasher = try SHA256Hasher()
        for d in try layerDiffIDs() {
            guard let bytes = try layerManifestBytes(d), let last = layerJSONMtime(d),
                  let m = try? decodeManifest(bytes, path: layout.layerManifest(d)), m.diffID == d else { continue }
            s.layers.append(StoreFiles.record(m, lastUse: last))
            s.files.append(contentsOf: IndexCodec.fileEntries(m, hasher: hasher))
        }
        try FileLock.withIfSupported(layout.refsLock) {
            s.refsGeneration = refsGeneration()
            s.refs = try refs()
        }
        return s
    }

    // MARK: writing

    /// Creates a file in STORE/tmp with an owner-recording name; returns its fd and path.
    func createTemp(_ kind: String, mode: mode_t = 0o600) throws -> (Int32, String) {
        let path = layout.tmpDir + "/" + TempName.make(kind)
        return (try FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL, mode), path)
    }

    /// Writes a small file atomically and durably through a temp file in STORE/tmp, so a crash
    /// leaves only a temp file that the sweep recognises. With `replace` false an existing file is
    /// kept and false returned. `syncFile` false skips the file's fsync and `syncDirectory` false the
    /// directory's: for files whose loss in a system crash is harmless, or whose directory the
    /// caller fsyncs afterwards anyway. Other processes see the same atomic rename either way.
    @discardableResult
    func writeAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, replace: Bool = true,
                         syncFile: Bool = true, syncDirectory: Bool = true) throws -> Bool {
        let (fd, tmp) = try createTemp("file")
        do {
            try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: tmp) }
            if fchmod(fd, mode) != 0 { throw CASError.io("chmod", tmp, errno) }
            if syncFile { try FileIO.fsync(fd, path: tmp) }
            _ = close(fd)
        } catch {
            _ = close(fd)
            _ = unlink(tmp)
            throw error
        }
        let rc = replace ? rename(tmp, path) : ud_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, path)
        if rc != 0 {
            let e = errno
            _ = unlink(tmp)
            if !replace && e == EEXIST { return false }
            throw CASError.io("rename", path, e)
        }
        if syncDirectory { try FileIO.fsyncDirectory(FileIO.parent(of: path)) }
        return true
    }

    /// mkdir that fsyncs the parent when it created the directory, so the new entry is durable.
    func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 {
            try FileIO.fsyncDirectory(FileIO.parent(of: path))
        } else if errno != EEXIST {
            throw CASError.io("mkdir", path, errno)
        }
    }
}
