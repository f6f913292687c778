// Unpacked layers: unpacking a layer blob once (idempotent, safe against concurrent unpackers),
// layer.json, and lookups that heal the index from the layer directories.
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import CShim

extension Store {
    /// Unpacks a layer blob into layers/sha256/<diff_id> unless it is unpacked already (from this
    /// blob, or from another blob with the same diff_id, to which this blob is then added).
    /// Returns the layer's manifest. Unpacked regular files are read-only. `maxExpansion` bounds
    /// the unpacked bytes at that many times the blob's size (at least `minimumLayerLimit`), so a
    /// verified blob that expands without measure (a gzip bomb) cannot fill the disk.
    public func unpackLayer(blob: Digest, maxExpansion: UInt64? = nil) throws -> LayerManifest {
        if let m = try unpackedLayer(forBlob: blob) { return m }
        guard hasBlob(blob) else { throw CASError.blobMissing(blob) }
        let tmp = layout.tmpDir + "/" + TempName.make("layer")
        do {
            try FileIO.mkdirs(tmp + "/root")
            let fd = try FileIO.open(layout.blobPath(blob), O_RDONLY)
            var m: LayerManifest
            do {
                defer { _ = close(fd) }
                // Blob files are named by the digest they were verified against at ingest (and are
                // read-only), so a plain-tar blob's name is its diff_id: no second hashing pass.
                var st = stat()
                let size = fstat(fd, &st) == 0 ? UInt64(max(0, st.st_size)) : 0
                m = try LayerUnpacker().unpack(fd: fd, sourceName: blob.description, into: tmp + "/root",
                                               verifiedBlobDigest: blob,
                                               outputLimit: maxExpansion.map { Store.layerLimit(blobSize: size, maxExpansion: $0) })
            }
            m.blobs = [blob]
            return try adoptLayer(tempDir: tmp, manifest: m)
        } catch {
            try? FileIO.removeTree(tmp)
            throw error
        }
    }

    /// `unpackLayer` for callers that need only the diff_id: a layer in the store is answered from
    /// the index (its record checked against layer.json's mtime) without reading its manifest back,
    /// which for a large layer is most of the work of pulling an image the store has.
    public func unpackLayerID(blob: Digest, maxExpansion: UInt64? = nil) throws -> Digest {
        if let d = try indexedLayer(forBlob: blob), let r = try layerRecord(diffID: d), r.blobs.contains(blob) { return d }
        return try unpackLayer(blob: blob, maxExpansion: maxExpansion).diffID
    }

    /// The smallest limit `maxExpansion` gives a layer, so a small blob may still hold a real tree.
    public static let minimumLayerLimit: UInt64 = 256 << 20

    /// The most bytes a layer blob of `blobSize` may unpack to under `maxExpansion`.
    public static func layerLimit(blobSize: UInt64, maxExpansion: UInt64) -> Int64 {
        let (product, overflow) = blobSize.multipliedReportingOverflow(by: maxExpansion)
        return Int64(clamping: max(minimumLayerLimit, overflow ? UInt64.max : product))
    }

    /// The manifest of an unpacked layer, or nil when it is not in the store.
    public func layer(diffID: Digest) throws -> LayerManifest? {
        try files.layerManifest(diffID)
    }

    /// The directory holding the layer's files (read-only; materialise containers from it).
    public func layerRoot(_ diffID: Digest) -> String { layout.layerRoot(diffID) }

    /// The summary of an unpacked layer, or nil when it is not in the store.
    public func layerRecord(diffID: Digest) throws -> LayerRecord? {
        let indexed = try index.read { t in
            try t.get(.layers, diffID.rawBytes).flatMap { IndexCodec.layerRecord(diffID, $0) }
        }
        guard let mtime = files.layerJSONMtime(diffID) else {
            if indexed != nil { try? index.write { t in try unindexLayer(diffID, t) } }
            return nil
        }
        if let indexed, indexed.lastUse == mtime { return indexed }
        guard let m = try files.layerManifest(diffID) else { return nil }
        let r = StoreFiles.record(m, lastUse: mtime)
        try? index.write { t in try indexLayer(m, lastUse: mtime, withFiles: indexed == nil, t) }
        return r
    }

    /// Every unpacked layer, sorted by diff_id, with the index brought in line with the directories.
    public func layers() throws -> [LayerRecord] {
        try reconcileLayers().records
    }

    /// The digest and size of a regular file of an unpacked layer, from the index.
    public func fileDigest(layer diffID: Digest, path: String) throws -> (digest: Digest, size: UInt64)? {
        let hasher = try SHA256Hasher()
        let key = IndexCodec.fileKey(layer: diffID, path: path, hasher: hasher)
        func lookup() throws -> (Digest, UInt64)? {
            try index.read { t in
                try t.get(.files, key).flatMap(IndexCodec.fileRecord).flatMap { $0.path == path ? ($0.digest, $0.size) : nil }
            }
        }
        if let r = try lookup() { return r }
        // The layer may be missing from the index (crash, other host): heal it and ask again.
        guard try layerRecord(diffID: diffID) != nil else { return nil }
        return try lookup()
    }

    // MARK: internals

    /// Finds the layer a blob unpacks to: through the index, else by reading the layer.json files
    /// the index does not know in their current version (new from another host, or after a crash).
    func unpackedLayer(forBlob blob: Digest) throws -> LayerManifest? {
        if let d = try indexedLayer(forBlob: blob), let m = try? files.layerManifest(d), m.blobs.contains(blob) { return m }
        var indexed = [Digest: LayerRecord]()
        try index.read { t in
            try t.forEach(.layers) { k, v in
                if let d = IndexCodec.digest(k, at: 0), let r = IndexCodec.layerRecord(d, v) { indexed[d] = r }
                return true
            }
        }
        let needle = Array(blob.hex.utf8)
        for d in try files.layerDiffIDs() {
            guard let mtime = files.layerJSONMtime(d) else { continue }
            if let r = indexed[d], r.lastUse == mtime, !r.blobs.contains(blob) { continue }
            guard let bytes = try files.layerManifestBytes(d), Store.contains(bytes, needle),
                  let m = try? files.decodeManifest(bytes, path: layout.layerManifest(d)), m.blobs.contains(blob) else { continue }
            try? index.write { t in try indexLayer(m, lastUse: mtime, withFiles: indexed[d] == nil, t) }
            return m
        }
        return nil
    }

    /// The diff_id the index gives for a blob (to be checked against the layer's files by the caller).
    private func indexedLayer(forBlob blob: Digest) throws -> Digest? {
        try index.read { t in try t.get(.blobLayers, blob.rawBytes).flatMap { IndexCodec.digest($0, at: 0) } }
    }

    static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, hay.count >= needle.count else { return needle.isEmpty }
        var i = 0
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first && hay[i..<i + needle.count].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// Makes an unpacked temp directory (tempDir/root plus the manifest) a store layer: layer.json, the
    /// seal where the store is sealed, then one no-replace rename. Its files are read-only already:
    /// LayerUnpacker creates them so.
    /// If the layer exists already, the temp directory is dropped and the manifest's blobs are
    /// added to the existing layer.json.
    func adoptLayer(tempDir: String, manifest m: LayerManifest) throws -> LayerManifest {
        try writeFileDurably(tempDir + "/layer.json", try StoreFiles.encode(m))
        if onNetworkFilesystem { try settleFileTimes(tempDir + "/root", manifest: m) }
        try shareTree(tempDir)
        _ = sealTempLayer(tempDir, manifest: m)
        try FileIO.fsyncDirectory(tempDir)
        Failpoint.hit("unpack-mid")
        let dest = layout.layerDir(m.diffID)
        if ud_rename_noreplace(AT_FDCWD, tempDir, AT_FDCWD, dest) != 0 {
            let e = errno
            guard e == EEXIST || e == ENOTEMPTY else { throw CASError.io("rename", dest, e) }
            try? FileIO.removeTree(tempDir)
            return try addBlobs(m.blobs, toLayer: m.diffID)
        }
        try FileIO.fsyncDirectory(layout.layersDir)
        if let mtime = files.layerJSONMtime(m.diffID) {
            try? index.write { t in try indexLayer(m, lastUse: mtime, withFiles: true, t) }
        }
        return m
    }

    /// Adds blobs to an existing layer's layer.json (under the layers lock, so concurrent additions
    /// are not lost).
    func addBlobs(_ blobs: [Digest], toLayer diffID: Digest) throws -> LayerManifest {
        try FileLock.withIfSupported(layout.layersLock) {
            guard var m = try files.layerManifest(diffID) else { throw CASError.layerMissing(diffID) }
            if !Set(blobs).isSubset(of: Set(m.blobs)) {
                m.blobs = Array(Set(m.blobs).union(blobs)).sorted()
                try files.writeAtomically(layout.layerManifest(diffID), try StoreFiles.encode(m))
            }
            if let mtime = files.layerJSONMtime(diffID) {
                let known = try index.read { t in try t.get(.layers, diffID.rawBytes) != nil }
                try? index.write { t in try indexLayer(m, lastUse: mtime, withFiles: !known, t) }
            }
            return m
        }
    }

    /// Sets every regular file's mtime again, by name and with an explicit atime, on a network
    /// filesystem: some FUSE filesystems (bindfs 1.14) take UTIME_OMIT for "now" and set both times.
    func settleFileTimes(_ root: String, manifest m: LayerManifest) throws {
        var times = [timespec(), timespec()]
        for e in m.entries where e.kind == .file {
            times[0] = timespec(tv_sec: Int(e.mtime), tv_nsec: 0)
            times[1] = times[0]
            if utimensat(AT_FDCWD, root + "/" + e.path, &times, AT_SYMLINK_NOFOLLOW) != 0 && errno != ENOENT {
                throw CASError.io("set times of", root + "/" + e.path, errno)
            }
        }
    }

    private func writeFileDurably(_ path: String, _ bytes: [UInt8]) throws {
        let fd = try FileIO.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        defer { _ = close(fd) }
        try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: path) }
        try FileIO.fsync(fd, path: path)
    }

    func indexLayer(_ m: LayerManifest, lastUse: Int64, withFiles: Bool, _ t: LMDBTxn) throws {
        let r = StoreFiles.record(m, lastUse: lastUse)
        try t.put(.layers, m.diffID.rawBytes, IndexCodec.layerValue(r))
        for b in r.blobs { try t.put(.blobLayers, b.rawBytes, m.diffID.rawBytes) }
        if withFiles {
            let hasher = try SHA256Hasher()
            for (k, v) in IndexCodec.fileEntries(m, hasher: hasher) { try t.put(.files, k, v) }
        }
    }

    func unindexLayer(_ diffID: Digest, _ t: LMDBTxn) throws {
        if let r = try t.get(.layers, diffID.rawBytes).flatMap({ IndexCodec.layerRecord(diffID, $0) }) {
            for b in r.blobs where try t.get(.blobLayers, b.rawBytes) == diffID.rawBytes {
                try t.delete(.blobLayers, b.rawBytes)
            }
        }
        var keys = [[UInt8]]()
        try t.forEach(.files, prefix: diffID.rawBytes) { k, _ in
            keys.append(k)
            return true
        }
        for k in keys { try t.delete(.files, k) }
        try t.delete(.layers, diffID.rawBytes)
    }

    /// Lists layer directories and fixes the index where it differs.
    func reconcileLayers() throws -> (records: [LayerRecord], fixed: Int) {
        let onDisk = try files.layerDiffIDs()
        var indexed = [Digest: LayerRecord]()
        try index.read { t in
            try t.forEach(.layers) { k, v in
                if let d = IndexCodec.digest(k, at: 0), let r = IndexCodec.layerRecord(d, v) { indexed[d] = r }
                return true
            }
        }
        var records = [LayerRecord]()
        var fixed = 0
        for d in onDisk {
            let known = indexed.removeValue(forKey: d)
            if let known, known.lastUse == files.layerJSONMtime(d) {
                records.append(known)
                continue
            }
            // Unreadable layer.json: not listed; verify reports it.
            guard let r = try? layerRecord(diffID: d) else { continue }
            records.append(r)
            fixed += 1
        }
        if !indexed.isEmpty {
            try index.write { t in
                for d in indexed.keys { try unindexLayer(d, t) }
            }
            fixed += indexed.count
        }
        return (records, fixed)
    }
}
