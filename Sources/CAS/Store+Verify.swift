// verify: rehash every blob and every unpacked file, check refs and the index against the files,
// report in plain words, and with repair remove what is corrupt (it can be fetched again).
#if canImport(Glibc)
import Glibc
#endif
import CShim

/// One thing verify found.
public struct VerifyProblem: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case corruptBlob, writableBlob, corruptLayer, writableLayerFile, missingObject, badRefFile, staleTempFile
    }
    public var kind: Kind
    /// The blob or layer digest, holder, or path concerned.
    public var subject: String
    /// What is wrong, in plain words.
    public var message: String
    /// Whether repair fixed it.
    public var repaired: Bool

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
            : "\(left) problem(s) remain; run 'udocker store verify --repair' to remove corrupt objects, then pull the affected images again")
        return out
    }

    mutating func add(_ kind: VerifyProblem.Kind, _ subject: String, _ message: String, repaired: Bool = false) {
        problems.append(VerifyProblem(kind: kind, subject: subject, message: message, repaired: repaired))
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

    func checkLayer(_ diffID: Digest, repair: Bool, into r: inout VerifyReport) {
        r.layersChecked += 1
        var bad = [String]()
        var writable = [(Int32, String)]()
        defer { for (fd, _) in writable { _ = close(fd) } }
        let manifest: LayerManifest?
        do { manifest = try files.layerManifest(diffID) } catch { manifest = nil }
        if let m = manifest, m.diffID == diffID {
            let root = layout.layerRoot(diffID)
            let rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if rootFD < 0 {
                bad.append("its directory \(root) cannot be opened")
            } else {
                defer { _ = close(rootFD) }
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
                    if let (d, n) = h, d == e.digest, n == (e.size ?? n) {
                        if st.st_mode & 0o222 != 0 { writable.append((fd, e.path)) } else { _ = close(fd) }
                    } else {
                        _ = close(fd)
                        bad.append("/\(e.path) has changed (content differs from layer.json)")
                    }
                }
            }
        } else {
            bad.append(manifest == nil ? "its layer.json is missing or unreadable" : "its layer.json names another layer")
        }
        if !bad.isEmpty {
            let fixed = repair && removeLayer(diffID)
            let shown = bad.prefix(5).joined(separator: "; ") + (bad.count > 5 ? "; and \(bad.count - 5) more" : "")
            r.add(.corruptLayer, diffID.description, "unpacked layer \(diffID) is corrupt: \(shown)", repaired: fixed)
            return
        }
        for (fd, path) in writable {
            let fixed = repair && fchmod(fd, 0o444 | 0o111 & mode_t(statMode(fd))) == 0
            r.add(.writableLayerFile, "\(diffID) \(path)",
                  "file /\(path) of unpacked layer \(diffID) is writable; store files must be read-only", repaired: fixed)
        }
    }

    private func statMode(_ fd: Int32) -> mode_t {
        var st = stat()
        return fstat(fd, &st) == 0 ? st.st_mode : 0
    }

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
        return ok
    }
}
