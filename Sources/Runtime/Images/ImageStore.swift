// The images of one repository: records in REPO/repos/<name>/<tag>/ (image.json, udocker's TAG file,
// PROTECT marker) and the store ref each image holds ("repo/<repo id>/image/<name>:<tag>").
import CAS
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

/// One image of the repository.
public struct LocalImage: Sendable, Equatable {
    public var name: ImageName
    public var record: ImageRecord
    /// REPO/repos/<name>/<tag>
    public var directory: String
    public var isProtected: Bool
}

/// What `ImageStore.remove` did.
public struct ImageRemoval: Sendable, Equatable {
    public var name: ImageName
    /// The containers created from the image (first name, else id): their refs keep its layers.
    public var containers: [String]
    public var released: ReleaseReport
}

/// Reads and changes the images of a repository. Every file is written atomically (temp + rename);
/// the store ref is set before the record is written and dropped after it is removed, so a crash
/// can leak a ref (kept data) but never leave a record whose data may be collected.
public final class ImageStore: Sendable {
    public let repository: Repository
    public let store: Store
    /// The repository's id (repo.json); a udocker 1.3 repository gets one on first use.
    public let repositoryID: String
    /// The containers created from an image (each by its first name, else its id), which keep its
    /// layers after `remove`. Set by the container code; without it no image is in use.
    public let containersUsing: @Sendable (ImageName) throws -> [String]

    public static let recordFile = "image.json"
    public static let tagFile = "TAG"
    public static let protectFile = "PROTECT"

    public init(repository: Repository, store: Store,
                containersUsing: @escaping @Sendable (ImageName) throws -> [String] = { _ in [] }) throws {
        self.repository = repository
        self.store = store
        self.containersUsing = containersUsing
        if let id = repository.id {
            repositoryID = id
        } else {
            let created = try Repository.create(at: repository.topdir, storeDir: repository.storeDir)
            guard let id = created.repository.id else {
                throw RuntimeError.badMetadata(path: repository.metadataFile, reason: "no repository id")
            }
            repositoryID = id
        }
    }

    /// The store holder of an image of this repository.
    public func holder(_ name: ImageName) -> String { "repo/\(repositoryID)/image/\(name)" }

    public func directory(_ name: ImageName) -> String { repository.reposdir + "/" + name.name + "/" + name.tag }

    // MARK: reading

    /// Every image with a record, sorted by name and tag. Directories without image.json (images
    /// pulled by udocker 1.3 itself) are not listed.
    public func images() throws -> [LocalImage] {
        var out = [LocalImage](), foreign = [ImageName]()
        try walk(repository.reposdir, relative: "", depth: 0, into: &out, foreign: &foreign)
        return out.sorted { $0.name < $1.name }
    }

    /// The images udocker 1.3 itself wrote into this repository (its TAG file, no image.json): their
    /// layers are not in the store, so they cannot be used until pulled again.
    public func foreignImages() throws -> [ImageName] {
        var out = [LocalImage](), foreign = [ImageName]()
        try walk(repository.reposdir, relative: "", depth: 0, into: &out, foreign: &foreign)
        return foreign.sorted()
    }

    /// The image named `text` as the user typed it (see ImageName), or nil.
    public func image(named text: String) throws -> LocalImage? {
        try image(try ImageName(parsing: text))
    }

    public func image(_ name: ImageName) throws -> LocalImage? {
        let dir = directory(name)
        let file = dir + "/" + Self.recordFile
        guard isRegularFile(file) else { return nil }
        return LocalImage(name: name, record: try readRecord(file), directory: dir, isProtected: isProtected(name))
    }

    /// The image or a RuntimeError.imageNotFound.
    public func require(_ text: String) throws -> LocalImage {
        let name = try ImageName(parsing: text)
        guard let i = try image(name) else { throw RuntimeError.imageNotFound(name.description) }
        return i
    }

    public func isProtected(_ name: ImageName) -> Bool {
        FileIO.exists(directory(name) + "/" + Self.protectFile)
    }

    // MARK: changing

    /// Records a pulled image under `name` (replacing an earlier record of that name) and sets its
    /// ref. Call it while the pull's pending ref still holds the digests.
    @discardableResult
    public func record(_ pulled: PulledImage, as name: ImageName) throws -> LocalImage {
        try write(ImageRecord(pulled: pulled, name: name), as: name)
    }

    /// Records `record` under `name` and sets the image's ref to its digests.
    @discardableResult
    public func write(_ record: ImageRecord, as name: ImageName) throws -> LocalImage {
        var rec = record
        rec.tag = name.tag
        let dir = directory(name)
        try cas { try FileIO.mkdirs(dir, mode: 0o777) }
        try cas { try store.setRef(holder: holder(name), digests: rec.digests) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let bytes: [UInt8]
        do { bytes = Array(try encoder.encode(rec)) + [10] } catch {
            throw RuntimeError.badImageRecord(path: dir + "/" + Self.recordFile, reason: "cannot encode: \(error)")
        }
        try cas { try FileIO.writeAtomically(dir + "/" + Self.recordFile, bytes) }
        // udocker 1.3's TAG file: "<reposdir>/<name>:<tag>".
        try cas { try FileIO.writeAtomically(dir + "/" + Self.tagFile, Array((repository.reposdir + "/" + name.name + ":" + name.tag).utf8)) }
        return LocalImage(name: name, record: rec, directory: dir, isProtected: isProtected(name))
    }

    /// Gives image `source` a second name `target` (same content, its own record and ref).
    @discardableResult
    public func tag(_ source: String, _ target: String) throws -> LocalImage {
        let src = try require(source)
        let dst = try ImageName(parsing: target)
        if try image(dst) != nil { throw RuntimeError.imageExists(dst.description) }
        return try write(src.record, as: dst)
    }

    /// Removes an image (refused when protected). As in udocker, containers created from it stay and
    /// keep running: each holds the layer blobs and unpacked layers it was made from in its own ref,
    /// so releasing the image's ref deletes only what no other image, container or running pull
    /// holds (through the store's refcounts, no tree walk); the rest goes with the last container.
    /// The record goes first, then the ref. `force` also removes an image whose record is damaged
    /// (the advice of RuntimeError.badImageRecord).
    @discardableResult
    public func remove(_ text: String, force: Bool = false) throws -> ImageRemoval {
        let name = try ImageName(parsing: text)
        let dir = directory(name)
        do {
            guard try image(name) != nil else { throw RuntimeError.imageNotFound(name.description) }
        } catch RuntimeError.badImageRecord(let path, let reason) {
            if !force { throw RuntimeError.badImageRecord(path: path, reason: reason) }
        }
        if isProtected(name) { throw RuntimeError.imageProtected(name.description) }
        let users = try containersUsing(name)
        let aside = FileIO.parent(of: dir) + "/.rmi.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        if rename(dir, aside) != 0 { throw RuntimeError.io("rename", dir, errno) }
        try cas { try FileIO.removeTree(aside) }
        pruneEmptyParents(of: dir)
        return ImageRemoval(name: name, containers: users, released: try cas { try store.release(holder: holder(name)) })
    }

    public func protect(_ text: String) throws {
        let img = try require(text)
        try cas { try FileIO.writeAtomically(img.directory + "/" + Self.protectFile, []) }
    }

    public func unprotect(_ text: String) throws {
        let img = try require(text)
        let p = img.directory + "/" + Self.protectFile
        if unlink(p) != 0 && errno != ENOENT { throw RuntimeError.io("unlink", p, errno) }
    }

    // MARK: internals

    private func readRecord(_ path: String) throws -> ImageRecord {
        let bytes = try cas { try FileIO.readFile(path) }
        do {
            let r = try JSONDecoder().decode(ImageRecord.self, from: Data(bytes))
            guard r.format == ImageRecord.formatVersion else {
                throw RuntimeError.badImageRecord(path: path, reason: "format \(r.format) is unknown to this udocker")
            }
            return r
        } catch let e as RuntimeError {
            throw e
        } catch {
            throw RuntimeError.badImageRecord(path: path, reason: "\(error)")
        }
    }

    /// Directories holding image.json are images: name = path below reposdir, tag = last component.
    /// Symlinks are not followed (no loops, nothing outside the repository).
    private func walk(_ dir: String, relative: String, depth: Int, into out: inout [LocalImage],
                      foreign: inout [ImageName]) throws {
        guard depth < 32 else { return }
        for entry in try cas({ try FileIO.listDirectory(dir) }).sorted() where !entry.hasPrefix(".") {
            let path = dir + "/" + entry
            guard isRealDirectory(path) else { continue }
            let rel = relative.isEmpty ? entry : relative + "/" + entry
            if !relative.isEmpty, isRegularFile(path + "/" + Self.recordFile) {
                let name = ImageName(name: relative, tag: entry)
                if let r = try? readRecord(path + "/" + Self.recordFile) {
                    out.append(LocalImage(name: name, record: r, directory: path, isProtected: isProtected(name)))
                }
            } else if !relative.isEmpty, isRegularFile(path + "/" + Self.tagFile) {
                foreign.append(ImageName(name: relative, tag: entry))
            }
            try walk(path, relative: rel, depth: depth + 1, into: &out, foreign: &foreign)
        }
    }

    private func pruneEmptyParents(of dir: String) {
        var d = FileIO.parent(of: dir)
        while d.hasPrefix(repository.reposdir + "/") && rmdir(d) == 0 { d = FileIO.parent(of: d) }
    }

    private func isRealDirectory(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    private func isRegularFile(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Runs store and file calls, reporting their failures as RuntimeError (the module's one type).
    private func cas<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch CASError.io(let op, let path, let err) {
            throw RuntimeError.io(op, path, err)
        }
    }
}
