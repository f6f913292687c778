// The stat cache of a container's delta (REPO/sync/<id>.cache, outside the container directory, as
// git keeps its index outside the work tree): which copied files were hashed at which size, mtime,
// ctime and inode, and the walk signature and delta blob of the last prepare, so that an unchanged
// container is recognised from stat() alone and nothing is read or hashed again.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a file looked like when it was hashed: a later stat with the same values means the same
/// content (git's racy-clean rule is applied: a file hashed in the second it was last changed is
/// not trusted, since a write in that same second would leave mtime unchanged).
struct StatKey: Codable, Equatable, Hashable {
    var inode: UInt64
    var size: Int64
    var mtime: Int64
    var mtimeNsec: Int64
    var ctime: Int64
    var ctimeNsec: Int64

    init(_ st: stat) {
        inode = UInt64(st.st_ino); size = Int64(st.st_size)
        mtime = Int64(st.st_mtim.tv_sec); mtimeNsec = Int64(st.st_mtim.tv_nsec)
        ctime = Int64(st.st_ctim.tv_sec); ctimeNsec = Int64(st.st_ctim.tv_nsec)
    }
}

/// Kept in two files: REPO/sync/<id>.cache (small: what the last prepare compared against, its
/// signature and delta, the digests of patched files) read on every prepare, and REPO/sync/<id>.files
/// (a digest for each copied file) read only when the signature moved.
struct DeltaCache: Codable, Equatable {
    static let format = 2

    struct FileDigest: Codable, Equatable {
        var stat: StatKey
        var digest: Digest
    }

    var format: Int = DeltaCache.format
    /// The source's mode and image layers (diff_ids) the walk compared against.
    var base: String = ""
    /// `ContainerDelta.quickSignature` of the tree when the delta was made.
    var signature: String = ""
    /// The delta blob made then.
    var delta: SyncObject?
    /// Digests of patched F3/F4 files (ModeConversion), by path relative to ROOT.
    var patched: [String: FileDigest] = [:]
    /// Content digests of the container's own regular files, by path relative to ROOT (the .files file).
    var files: [String: FileDigest] = [:]

    private enum CodingKeys: String, CodingKey { case format, base, signature, delta, patched }

    init(base: String = "", signature: String = "", delta: SyncObject? = nil, patched: [String: FileDigest] = [:],
         files: [String: FileDigest] = [:]) {
        self.base = base; self.signature = signature; self.delta = delta; self.patched = patched; self.files = files
    }

    static func directory(_ repository: Repository) -> String { repository.topdir + "/sync" }
    static func path(_ repository: Repository, id: String) -> String { directory(repository) + "/" + id + ".cache" }
    static func filesPath(_ repository: Repository, id: String) -> String { directory(repository) + "/" + id + ".files" }

    /// The small part of the cache of container `id`, or an empty one when there is none or it cannot
    /// be read (the cache only saves work: a missing one means hashing again).
    static func load(_ repository: Repository, id: String) -> DeltaCache {
        guard let bytes = try? FileIO.readFile(path(repository, id: id)),
              let c = try? JSONDecoder().decode(DeltaCache.self, from: Data(bytes)), c.format == format else { return DeltaCache() }
        return c
    }

    /// Reads the per-file digests (when the walk has to compare files).
    mutating func loadFiles(_ repository: Repository, id: String) {
        guard let bytes = try? FileIO.readFile(Self.filesPath(repository, id: id)),
              let f = try? JSONDecoder().decode([String: FileDigest].self, from: Data(bytes)) else { return }
        files = f
    }

    /// Written atomically, files first; a failure to write is not an error (the next prepare hashes again).
    func save(_ repository: Repository, id: String, withFiles: Bool) {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        try? FileIO.mkdirs(Self.directory(repository), mode: 0o700)
        if withFiles, let data = try? e.encode(files) {
            try? FileIO.writeAtomically(Self.filesPath(repository, id: id), Array(data), mode: 0o600)
        }
        guard let data = try? e.encode(self) else { return }
        try? FileIO.writeAtomically(Self.path(repository, id: id), Array(data), mode: 0o600)
    }

    /// Removes the cache of a container that is gone.
    static func remove(_ repository: Repository, id: String) {
        _ = unlink(path(repository, id: id))
        _ = unlink(filesPath(repository, id: id))
    }

    /// The digest of a file when its stat is the one recorded.
    func digest(_ path: String, _ key: StatKey) -> Digest? {
        guard let f = files[path], f.stat == key else { return nil }
        return f.digest
    }

    func patchedDigest(_ path: String, _ key: StatKey) -> Digest? {
        guard let f = patched[path], f.stat == key else { return nil }
        return f.digest
    }
}
