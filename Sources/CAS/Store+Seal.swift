// Sealing unpacked layers: their regular files are given to the user's subordinate uid and gid, so no
// container linked to them can chmod or write them. A layer's `sealed` file says it is complete.
#if canImport(Glibc)
import Glibc
#endif

extension StoreLayout {
    /// Present once every regular file of the layer belongs to the ids it holds ("uid:gid").
    public func layerSealFile(_ diffID: Digest) -> String { layerDir(diffID) + "/sealed" }
}

extension Store {
    /// Namespace children for a batch: one per CPU, at most four (the kernel serialises work inside one
    /// directory, so more children than CPUs only wait).
    static var namespaceChildren: Int { max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }

    /// The mode of a sealed store file: readable by everyone (the user is "other" to its owner) and
    /// executable by everyone when the image gives any execute bit; never writable, never setuid.
    public static func sealedFileMode(_ imageMode: UInt32) -> UInt32 {
        0o444 | (imageMode & 0o111 != 0 ? 0o111 : 0)
    }

    /// The mode the store's copy of a regular file has: sealed, or as the unpacker leaves it.
    public static func storeFileMode(_ imageMode: UInt32, sealed: Bool) -> UInt32 {
        sealed ? sealedFileMode(imageMode) : UInt32(LayerTreeWriter.storeFileMode(imageMode))
    }

    /// The modes a store file may have: sealed, or as the unpacker leaves it (plus read access for
    /// the group and others in a group store, see `shareTree`).
    public static func storeFileModes(_ imageMode: UInt32, sealed: Bool) -> [UInt32] {
        let m = storeFileMode(imageMode, sealed: sealed)
        return sealed || m & 0o044 == 0o044 ? [m] : [m, m | 0o044]
    }

    /// What a layer's `sealed` file holds: "<subuid>:<subgid>\n".
    static func sealText(_ owner: SealOwner) -> [UInt8] { Array("\(owner.subuid):\(owner.subgid)\n".utf8) }

    /// The owner recorded in the layer's `sealed` file, or nil when the layer is not (completely) sealed.
    public func sealOwner(ofLayer diffID: Digest) -> (uid: UInt32, gid: UInt32)? {
        sealOwner(file: layout.layerSealFile(diffID))
    }

    /// The owner a seal marker (of a layer or a private copy) records.
    func sealOwner(file: String) -> (uid: UInt32, gid: UInt32)? {
        guard let bytes = try? FileIO.readFile(file) else { return nil }
        let f = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == ":" || $0 == "\n" })
        guard f.count >= 2, let u = UInt32(f[0]), let g = UInt32(f[1]) else { return nil }
        return (u, g)
    }

    /// Whether the tree this user's containers link for the layer is sealed for its subordinate ids.
    public func isSealed(_ diffID: Digest) -> Bool {
        guard let o = protection.owner, let s = sealOwner(file: layout.linkSealFile(diffID)) else { return false }
        return s.uid == o.subuid && s.gid == o.subgid
    }

    /// Seals those of `layers` that are not sealed yet (layers unpacked before sealing was possible, or
    /// whose sealing was interrupted: a chown is idempotent, so it is simply done again). Returns the
    /// layers that stay unsealed with why; nothing when the store is not sealed.
    @discardableResult
    public func sealLayers(_ layers: [Digest]) -> [(layer: Digest, reason: String)] {
        guard let owner = protection.owner else { return [] }
        var failed = [(layer: Digest, reason: String)]()
        for d in layers where !isSealed(d) {
            do {
                guard let m = try files.layerManifest(d) else { throw CASError.layerMissing(d) }
                try sealTree(layout.layerRoot(d), manifest: m, owner: owner)
                _ = try files.writeAtomically(layout.layerSealFile(d), Self.sealText(owner), mode: 0o444)
            } catch {
                failed.append((d, "\(error)"))
            }
        }
        return failed
    }

    /// Seals the unpacked tree at `tempDir/root` before it is adopted, so a layer is sealed from the
    /// moment it is visible. False (the layer stays unsealed, `sealLayers` tries again later) when the
    /// namespace cannot be made.
    func sealTempLayer(_ tempDir: String, manifest m: LayerManifest) -> Bool {
        guard let owner = protection.owner else { return false }
        do {
            try sealTree(tempDir + "/root", manifest: m, owner: owner)
            let marker = tempDir + "/sealed"
            let fd = try FileIO.open(marker, O_WRONLY | O_CREAT | O_EXCL, 0o444)
            defer { _ = close(fd) }
            // Every member reads it (in a group store), whatever this one's umask.
            _ = fchmod(fd, 0o444)
            try Self.sealText(owner).withUnsafeBytes { try FileIO.writeAll(fd, $0, path: marker) }
            return true
        } catch {
            return false
        }
    }

    /// Gives every regular file of the manifest the subordinate ids and its sealed mode, a directory
    /// per job. Every file is changed again, sealed or not: the marker, not the files, says "done".
    func sealTree(_ root: String, manifest m: LayerManifest, owner: SealOwner) throws {
        let rootFD = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if rootFD < 0 { throw CASError.io("open", root, errno) }
        defer { _ = close(rootFD) }
        var byDir = [String: (names: [String], modes: [UInt32])]()
        for e in m.entries where e.kind == .file {
            let (dir, name) = LayerPath.split(e.path)
            byDir[dir, default: ([], [])].names.append(name)
            byDir[dir, default: ([], [])].modes.append(Self.sealedFileMode(e.mode))
        }
        let dirs = byDir.keys.sorted()
        let jobs = dirs.map { d in NamespaceJob.seal(in: rootFD, d, names: byDir[d]?.names ?? [], modes: byDir[d]?.modes ?? []) }
        var results: [[Int32]]
        if Failpoint.armed("seal-mid") && jobs.count > 1 {
            // Half the files change owner, then the process dies: what kill -9 during a seal leaves.
            results = try UserNamespace.run(Array(jobs[..<(jobs.count / 2)]), owner: owner, children: 1)
            Failpoint.hit("seal-mid")
            results += try UserNamespace.run(Array(jobs[(jobs.count / 2)...]), owner: owner, children: 1)
        } else {
            results = try UserNamespace.run(jobs, owner: owner, children: Self.namespaceChildren)
        }
        for (j, r) in zip(jobs, results) {
            if let i = r.firstIndex(where: { $0 != 0 }) {
                let path = (j.dstDir.isEmpty ? "" : j.dstDir + "/") + j.names[i]
                throw CASError.io("chown", root + "/" + path, r[i])
            }
        }
    }
}
