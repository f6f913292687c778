// verify: rehash every blob and every unpacked file, check refs and the index against the files,
// report in plain words, and with repair remove what is corrupt (it can be fetched again).
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// One thing verify found.
public struct VerifyProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case corruptBlob, writableBlob, corruptLayer, changedLayerFile, missingObject, badRefFile, staleTempFile
    }
    /// A store file that was changed in place (changedLayerFile): where it is, and its inode, which the
    /// containers hardlinked to it share.
    public struct ChangedFile: Sendable, Equatable {
        public var layer: Digest
        public var path: String
        public var device: UInt64
        public var inode: UInt64
    }
    public var kind: Kind
    /// The blob or layer digest, holder, or path concerned.
    public var subject: String
    /// What is wrong, in plain words.
    public var message: String
    /// Whether repair fixed it.
    public var repaired: Bool
    public var file: ChangedFile? = nil

    public var description: String { message + (repaired ? " (repaired)" : "") }
}

/// What verify found and did.
public struct VerifyReport: Sendable {
    public var blobsChecked = 0
    public var layersChecked = 0
    public var filesChecked = 0
    public var problems: [VerifyProblem] = []
    /// Index entries that disagreed with the files and were corrected (not a problem: the index is a cache).
    public var indexEntriesFixed = 0
    /// Things worth knowing that are not problems (dead pending refs, stray files removed, index rebuilt).
    public var notes: [String] = []

    /// True when nothing is left wrong: no problems, or all of them repaired.
    public var isHealthy: Bool { problems.allSatisfy(\.repaired) }

    public var corruptBlobs: [Digest] { digests(.corruptBlob) }
    public var corruptLayers: [Digest] { digests(.corruptLayer) }

    private func digests(_ k: VerifyProblem.Kind) -> [Digest] {
        problems.filter { $0.kind == k }.compactMap { try? Digest(parsing: $0.subject) }
    }

    /// Plain-language lines for the user.
    public var summary: [String] {
        var out = ["checked \(blobsChecked) blob(s), \(layersChecked) unpacked layer(s) with \(filesChecked) file(s)"]
        out += problems.map(\.description)
        if indexEntriesFixed > 0 { out.append("corrected \(indexEntriesFixed) out-of-date index entr\(indexEntriesFixed == 1 ? "y" : "ies")") }
        out += notes
        let left = problems.filter { !$0.repaired }.count
        out.append(problems.isEmpty ? "the store is healthy"
            : left == 0 ? "all problems were repaired"
            : "\(left) problem(s) remain; run 'udocker store verify --repair' to restore files changed in place and remove corrupt objects, then pull the images whose layers it removed again")
        return out
    }

    mutating func add(_ kind: VerifyProblem.Kind, _ subject: String, _ message: String, repaired: Bool = false,
                      file: VerifyProblem.ChangedFile? = nil) {
        problems.append(VerifyProblem(kind: kind, subject: subject, message: message, repaired: repaired, file: file))
    }
}

extension Store {
    /// Checks the whole store. With `repair`, removes corrupt blobs and layers, stale temp files,
    /// unreadable ref files and dead pending refs, fixes file modes, and rebuilds the index.
    public func verify(repair: Bool) throws -> VerifyReport {
        var r = VerifyReport()
        for p in try TempSweeper.staleEntries(in: layout.tmpDir) {
            let fixed = repair && (try? FileIO.removeTree(p)) != nil
            r.add(.staleTempFile, p, "stale temporary file \(p) left by an interrupted udocker process", repaired: fixed)
        }
        for d in try files.blobDigests() { checkBlob(d, repair: repair, into: &r) }
        for p in try files.orphanTypeFiles() where repair && unlink(p) == 0 {
            r.notes.append("removed \(p), the media type of a blob that is not stored")
        }
        for d in try files.layerDiffIDs() { checkLayer(d, repair: repair, into: &r) }
        for c in privateCopies() {
            if FileIO.exists(layout.layerDir(c.diffID)) {
                checkLayer(c.diffID, repair: repair, into: &r, privateOf: c.uid)
            } else if repair && removePrivateCopy(uid: c.uid, c.diffID) {
                r.notes.append("removed the private copy of user \(c.uid) of layer \(c.diffID), which is no longer in the store")
            }
        }
        for p in try files.badRefFiles() {
            let fixed = repair && (try? FileLock.with(layout.refsLock) { try FileIO.removeTree(p) }) != nil
            r.add(.badRefFile, p, "ref file \(p) is unreadable or misnamed", repaired: fixed)
        }
        let refs = try files.refs()
        for (holder, digests) in refs.sorted(by: { $0.key < $1.key }) {
            if Holder.isDeadPending(holder) {
                if repair { try removeRef(holder: holder) }
                r.notes.append("\(repair ? "dropped" : "found") the reservation \(holder) of a process that is gone")
                continue
            }
            // A live pull reserves digests before it downloads them: absent is normal there.
            if holder.hasPrefix("pending/") { continue }
            for d in digests where !hasBlob(d) && !FileIO.exists(layout.layerManifest(d)) {
                r.add(.missingObject, "\(holder) \(d)", "\(d) needed by \(holder) is not in the store: pull that image again")
            }
        }
        if repair {
            if let note = try rebuildIndex() { r.notes.append(note) }
            r.notes.append("rebuilt the index from the store's files")
        } else {
            r.indexEntriesFixed += try reconcileBlobs().fixed
            r.indexEntriesFixed += try reconcileLayers().fixed
            try syncRefsIfStale()
        }
        return r
    }

    /// Checks one blob (`udocker verify IMAGE` checks an image's blobs this way).
    public func verify(blob: Digest, repair: Bool = false) throws -> VerifyReport {
        var r = VerifyReport()
        if hasBlob(blob) {
            checkBlob(blob, repair: repair, into: &r)
            _ = try blobRecord(blob)
        } else {
            r.add(.missingObject, blob.description, "blob \(blob) is not in the store: pull the image again")
        }
        return r
    }

    /// Checks one unpacked layer: every regular file against the digests in its layer.json.
    public func verify(layer diffID: Digest, repair: Bool = false) throws -> VerifyReport {
        var r = VerifyReport()
        if FileIO.exists(layout.layerDir(diffID)) {
            checkLayer(diffID, repair: repair, into: &r)
            _ = try? layerRecord(diffID: diffID)
        } else {
            r.add(.missingObject, diffID.description, "unpacked layer \(diffID) is not in the store: pull the image again")
        }
        return r
    }

    // MARK: internals

    func checkBlob(_ d: Digest, repair: Bool, into r: inout VerifyReport) {
        r.blobsChecked += 1
        let path = layout.blobPath(d)
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        var st = stat()
        guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            let e = errno
            if fd >= 0 { _ = close(fd) }
            if e == ENOENT { return }  // removed meanwhile (GC)
            let fixed = repair && removeBlob(d)
            r.add(.corruptBlob, d.description, "blob \(d) cannot be read or is not a regular file", repaired: fixed)
            return
        }
        defer { _ = close(fd) }
        guard let (actual, _) = try? SHA256Hasher.hash(fd: fd, path: path) else {
            r.add(.corruptBlob, d.description, "blob \(d) cannot be read (\(String(cString: strerror(errno))))")
            return
        }
        if actual != d {
            let fixed = repair && removeBlob(d)
            r.add(.corruptBlob, d.description, "blob \(d) is corrupt: its content hashes to \(actual)", repaired: fixed)
        } else if st.st_mode & 0o222 != 0 {
            let fixed = repair && fchmod(fd, 0o444) == 0
            r.add(.writableBlob, d.description, "blob \(d) is writable; store files must be read-only", repaired: fixed)
        }
    }

    /// Removes a blob file and its media-type sidecar.
    func removeBlob(_ d: Digest) -> Bool {
        let ok = unlink(layout.blobPath(d)) == 0 || errno == ENOENT
        _ = unlink(layout.blobTypePath(d))
        try? healBlob(d, nil)
        return ok
    }

    /// A regular file of a layer whose content, mode, owner or mtime is not what layer.json and the
    /// seal say: what differs, and in words.
    private struct Changed {
        var path: String
        var changes: Set<FileChange>
        var what: [String]
        var file: VerifyProblem.ChangedFile
    }

    /// Checks a layer's shared tree, or with `privateOf` that member's private copy of it (whose
    /// repair is its removal: the member's next create makes it again).
    func checkLayer(_ diffID: Digest, repair: Bool, into r: inout VerifyReport, privateOf uid: UInt32? = nil) {
        r.layersChecked += 1
        var bad = [String]()
        var changed = [Changed]()
        let manifest: LayerManifest?
        do { manifest = try files.layerManifest(diffID) } catch { manifest = nil }
        let privateDir = uid.map { layout.privateLayerDir(uid: $0, diffID) }
        let what = uid.map { "the private copy of user \($0) of unpacked layer \(diffID)" } ?? "unpacked layer \(diffID)"
        let sealedBy = sealOwner(file: privateDir.map { $0 + "/sealed" } ?? layout.layerSealFile(diffID))
        if let m = manifest, m.diffID == diffID {
            let root = privateDir.map { $0 + "/root" } ?? layout.layerRoot(diffID)
            let rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            var rootSt = stat()
            if rootFD < 0 || fstat(rootFD, &rootSt) != 0 {
                bad.append("its directory \(root) cannot be opened")
                if rootFD >= 0 { _ = close(rootFD) }
            } else {
                defer { _ = close(rootFD) }
                // Who may own the files: the seal's ids, else the layer's owner; a layer whose seal was
                // interrupted (no `sealed` file yet) may hold both, and is sealed again on next use.
                let partly = sealedBy == nil ? protection.owner.map { (uid: $0.subuid, gid: $0.subgid) } : nil
                for e in m.entries where e.kind == .file {
                    r.filesChecked += 1
                    let fd = ud_openat_beneath(rootFD, e.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 1)
                    var st = stat()
                    guard fd >= 0, fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                        if fd >= 0 { _ = close(fd) }
                        bad.append("/\(e.path) is missing or not a regular file")
                        continue
                    }
                    let h = try? SHA256Hasher.hash(fd: fd, path: e.path)
                    _ = close(fd)
                    guard let (d, n) = h else {
                        bad.append("/\(e.path) cannot be read")
                        continue
                    }
                    let sealedMode = Self.storeFileMode(e.mode, sealed: true), plainMode = Self.storeFileMode(e.mode, sealed: false)
                    let plainModes = Self.storeFileModes(e.mode, sealed: false)
                    var changes = e.changes(st, digest: d, size: n,
                                            modes: sealedBy != nil ? [sealedMode] : partly != nil ? plainModes + [sealedMode] : plainModes)
                    let ownerOK: Bool
                    if let s = sealedBy {
                        ownerOK = st.st_uid == s.uid && st.st_gid == s.gid
                    } else {
                        ownerOK = st.st_uid == rootSt.st_uid || (partly.map { st.st_uid == $0.uid && st.st_gid == $0.gid } ?? false)
                    }
                    if !ownerOK { changes.insert(.owner) }
                    var what = [String]()
                    if changes.contains(.content) { what.append("content differs from layer.json") }
                    if changes.contains(.mode) {
                        what.append("mode \(Self.octal(UInt32(st.st_mode & 0o7777))), expected \(Self.octal(sealedBy != nil ? sealedMode : plainMode))")
                    }
                    if changes.contains(.owner) { what.append("owner \(st.st_uid):\(st.st_gid)") }
                    if changes.contains(.mtime) { what.append("mtime changed") }
                    if !what.isEmpty {
                        changed.append(Changed(path: e.path, changes: changes, what: what,
                                               file: .init(layer: diffID, path: e.path, device: UInt64(st.st_dev), inode: UInt64(st.st_ino))))
                    }
                }
            }
        } else {
            bad.append(manifest == nil ? "its layer.json is missing or unreadable" : "its layer.json names another layer")
        }
        if !bad.isEmpty {
            let fixed = repair && (uid.map { removePrivateCopy(uid: $0, diffID) } ?? removeLayer(diffID))
            let shown = bad.prefix(5).joined(separator: "; ") + (bad.count > 5 ? "; and \(bad.count - 5) more" : "")
            r.add(.corruptLayer, diffID.description, "\(what) is corrupt: \(shown)", repaired: fixed)
            return
        }
        guard !changed.isEmpty, let m = manifest else { return }
        if let uid {
            let removed = repair && removePrivateCopy(uid: uid, diffID)
            for c in changed {
                r.add(.changedLayerFile, "\(diffID) \(c.path)", "/\(c.path) of \(what) has changed in place (\(c.what.joined(separator: ", ")))",
                      repaired: removed, file: c.file)
            }
            return
        }
        var restored = Set<String>()
        var removed = false
        if repair {
            if sealedBy == nil {
                restored = restoreInPlace(layer: diffID, paths: Set(changed.map(\.path)), manifest: m)
            } else if changed.allSatisfy({ $0.changes.isSubset(of: [.mode, .owner]) }) {
                // Only ids or modes: sealing again sets both.
                _ = unlink(layout.layerSealFile(diffID))
                if sealLayers([diffID]).isEmpty { restored = Set(changed.map(\.path)) }
            }
            // What cannot be restored in place goes, as a corrupt layer does (pull the image again).
            if restored.count < changed.count { removed = removeLayer(diffID) }
        }
        for c in changed {
            r.add(.changedLayerFile, "\(diffID) \(c.path)",
                  "/\(c.path) of unpacked layer \(diffID) has changed in place (\(c.what.joined(separator: ", ")))",
                  repaired: restored.contains(c.path) || removed, file: c.file)
        }
    }

    static func octal(_ mode: UInt32) -> String { "0" + String(mode, radix: 8) }

    /// Removes an unpacked layer: renamed into tmp first so it disappears at once (a crash during
    /// the removal leaves a temp directory for the sweep, never a half layer).
    func removeLayer(_ diffID: Digest) -> Bool {
        let dir = layout.layerDir(diffID)
        let aside = layout.tmpDir + "/" + TempName.make("dead-layer")
        var st = stat()
        if lstat(dir, &st) == 0 && (st.st_mode & 0o200) == 0 { _ = chmod(dir, (st.st_mode & 0o7777) | 0o700) }
        let moved = rename(dir, aside) == 0
        let ok = (try? FileIO.removeTree(moved ? aside : dir)) != nil
        try? index.write { t in try unindexLayer(diffID, t) }
        for c in privateCopies() where c.diffID == diffID { removePrivateCopy(uid: c.uid, diffID) }
        return ok
    }
}

/// What may differ between a store file and its layer entry.
public enum FileChange: String, Sendable, Hashable {
    case content, mode, owner, mtime
}

extension LayerEntry {
    /// What differs between this regular-file entry and a file with status `st` whose content hashes
    /// to `digest` (`size` bytes, when known), given the modes the store may have given it. Owners are
    /// the caller's to judge (they depend on the seal and the store's user).
    public func changes(_ st: stat, digest: Digest, size: UInt64?, modes: [UInt32]) -> Set<FileChange> {
        var out = Set<FileChange>()
        if digest != self.digest || (size != nil && self.size != nil && size != self.size) { out.insert(.content) }
        if !modes.contains(UInt32(st.st_mode & 0o7777)) { out.insert(.mode) }
        if Int64(st.st_mtim.tv_sec) != mtime { out.insert(.mtime) }
        return out
    }
}
