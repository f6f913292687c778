// A group member's private copies of layers another member unpacked: fs.protected_hardlinks refuses to
// link another user's files, so each member keeps one copy per layer in the store for all its containers.
#if canImport(Glibc)
import Glibc
#endif
import CShim

extension StoreLayout {
    /// The tree containers of user `uid` link for a layer: the user's private copy where there is one
    /// (a group store, a layer another member unpacked), else the layer's shared tree.
    public func linkRoot(_ diffID: Digest, uid: UInt32 = getuid()) -> String {
        let p = privateLayerDir(uid: uid, diffID) + "/root"
        return FileIO.exists(p) ? p : layerRoot(diffID)
    }

    /// The seal marker of the tree `linkRoot` names.
    public func linkSealFile(_ diffID: Digest, uid: UInt32 = getuid()) -> String {
        let dir = privateLayerDir(uid: uid, diffID)
        return FileIO.exists(dir + "/root") ? dir + "/sealed" : layerSealFile(diffID)
    }
}

extension Store {
    /// The tree this user's containers link for a layer (see `StoreLayout.linkRoot`).
    public func linkRoot(_ diffID: Digest) -> String { layout.linkRoot(diffID) }

    /// Whether this user's containers link the layer's shared tree: always in a store of one user; in
    /// a group store when this user unpacked it (owns its root directory).
    func linksSharedTree(_ diffID: Digest) -> Bool {
        guard group != nil else { return true }
        var st = stat()
        return lstat(layout.layerRoot(diffID), &st) == 0 && st.st_uid == getuid()
    }

    /// Gets the trees this user's containers will link ready: seals the layers it links in place
    /// (`sealLayers`), and in a group store makes its private copy of each layer another member
    /// unpacked (reflinked where the filesystem can, sealed like a layer). Returns the layers whose
    /// tree stays unprotected or could not be copied, with why (their containers copy or stay unsealed).
    @discardableResult
    public func prepareLinkTrees(_ layers: [Digest]) -> [(layer: Digest, reason: String)] {
        var failed = [(layer: Digest, reason: String)]()
        var inPlace = [Digest]()
        for d in layers {
            if linksSharedTree(d) { inPlace.append(d); continue }
            do {
                if let unsealed = try makePrivateCopy(d) { failed.append((d, unsealed)) }
            } catch {
                failed.append((d, "\(error)"))
            }
        }
        return failed + sealLayers(inPlace)
    }

    /// Makes this user's private copy of layer `diffID` unless it exists. Built in tmp/ and renamed into
    /// place whole (sealed first where the store is sealed), so a copy is complete once visible.
    /// Returns why the copy stays unsealed when sealing it failed (it is kept: one unsealed copy beats
    /// a copy per container); nil when it is sealed, or the store is not.
    func makePrivateCopy(_ diffID: Digest) throws -> String? {
        let uid = getuid()
        let dest = layout.privateLayerDir(uid: uid, diffID)
        if FileIO.exists(dest + "/root") { return nil }
        guard let m = try files.layerManifest(diffID) else { throw CASError.layerMissing(diffID) }
        let mine = layout.privateCopiesDir(uid: uid)
        try makeGroupDirectory(layout.privateDir)
        try makeGroupDirectory(mine)
        let tmp = layout.tmpDir + "/" + TempName.make("private")
        do {
            try FileIO.mkdirs(tmp + "/root")
            try copyTree(diffID, manifest: m, into: tmp + "/root")
            if onNetworkFilesystem { try settleFileTimes(tmp + "/root", manifest: m) }
            try shareTree(tmp)
            var unsealed: String? = nil
            if let owner = protection.owner {
                do {
                    try sealTree(tmp + "/root", manifest: m, owner: owner)
                    _ = try files.writeAtomically(tmp + "/sealed", Self.sealText(owner), mode: 0o444)
                } catch {
                    unsealed = "\(error)"
                }
            }
            // The copy is made again if lost, but never half: its data reaches the disk before its name.
            let fd = Glibc.open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 { _ = ud_syncfs(fd); _ = close(fd) }
            if ud_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, dest) != 0 {
                let e = errno
                guard e == EEXIST || e == ENOTEMPTY else { throw CASError.io("rename", dest, e) }
                try? FileIO.removeTree(tmp)
                return nil
            }
            return unsealed
        } catch {
            try? FileIO.removeTree(tmp)
            throw error
        }
    }

    /// Copies the directories, regular files and in-layer hardlinks of a layer's shared tree into
    /// `root`. A file whose size or mtime is not what layer.json says was changed in place by its
    /// owner's run: refused, so the change does not spread to this member's containers.
    private func copyTree(_ diffID: Digest, manifest m: LayerManifest, into root: String) throws {
        let srcRoot = layout.layerRoot(diffID)
        let srcFD = Glibc.open(srcRoot, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if srcFD < 0 { throw CASError.io("open", srcRoot, errno) }
        defer { _ = close(srcFD) }
        var made: Set<String> = [""]
        func parent(_ path: String) throws {
            var dir = ""
            for comp in path.split(separator: "/").dropLast() {
                dir = dir.isEmpty ? String(comp) : dir + "/" + comp
                if made.contains(dir) { continue }
                if mkdir(root + "/" + dir, 0o755) != 0 && errno != EEXIST { throw CASError.io("mkdir", root + "/" + dir, errno) }
                made.insert(dir)
            }
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for e in m.entries {
            switch e.kind {
            case .directory:
                try parent(e.path + "/x")
            case .file:
                try parent(e.path)
                let src = ud_openat_beneath(srcFD, e.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 1)
                if src < 0 { throw CASError.io("open", srcRoot + "/" + e.path, errno) }
                defer { _ = close(src) }
                var st = stat()
                if fstat(src, &st) != 0 { throw CASError.io("stat", srcRoot + "/" + e.path, errno) }
                if (st.st_mode & S_IFMT) != S_IFREG || UInt64(st.st_size) != (e.size ?? 0) || Int64(st.st_mtim.tv_sec) != e.mtime {
                    throw CASError.sharedLayerChanged(diffID, e.path)
                }
                let path = root + "/" + e.path
                let dst = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                if dst < 0 { throw CASError.io("create", path, errno) }
                defer { _ = close(dst) }
                try copyContent(from: src, to: dst, path: path, buffer: &buffer)
                if fchmod(dst, LayerTreeWriter.storeFileMode(e.mode) | 0o044) != 0 { throw CASError.io("chmod", path, errno) }
                // Both times given: with UTIME_OMIT for the atime some FUSE filesystems (bindfs) leave
                // the mtime "now", and the copy would no longer match layer.json.
                var times = [timespec(tv_sec: Int(e.mtime), tv_nsec: 0), timespec(tv_sec: Int(e.mtime), tv_nsec: 0)]
                if futimens(dst, &times) != 0 { throw CASError.io("utimens", path, errno) }
            case .hardlink:
                guard let target = e.target else { continue }
                try parent(e.path)
                if link(root + "/" + target, root + "/" + e.path) != 0 && errno != EEXIST {
                    throw CASError.io("link", root + "/" + e.path, errno)
                }
            default:
                continue
            }
        }
    }

    /// Reflink, else an in-kernel copy, else read and write.
    private func copyContent(from src: Int32, to dst: Int32, path: String, buffer: inout [UInt8]) throws {
        if ud_ficlone(dst, src) == 0 { return }
        while true {
            let n = ud_copy_file_range(src, dst, 1 << 30)
            if n > 0 { continue }
            if n == 0 { return }
            let e = errno
            if e == EINTR { continue }
            guard e == ENOSYS || e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == EPERM || e == EBADF else {
                throw CASError.io("copy", path, e)
            }
            break
        }
        // The in-kernel copy may have moved both offsets before refusing: start again from the top.
        _ = lseek(src, 0, SEEK_SET)
        _ = ftruncate(dst, 0)
        _ = lseek(dst, 0, SEEK_SET)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw CASError.io("read", path, errno) }
            if n == 0 { return }
            try buffer.withUnsafeBytes { try FileIO.writeAll(dst, UnsafeRawBufferPointer(rebasing: $0[0..<n]), path: path) }
        }
    }

    /// Every private copy in the store: member uid and layer.
    func privateCopies() -> [(uid: UInt32, diffID: Digest)] {
        var out = [(uid: UInt32, diffID: Digest)]()
        for u in (try? FileIO.listDirectory(layout.privateDir)) ?? [] {
            guard let uid = UInt32(u) else { continue }
            for h in (try? FileIO.listDirectory(layout.privateCopiesDir(uid: uid))) ?? [] where StoreFiles.isHex64(Substring(h)) {
                if let d = try? Digest(parsing: h, allowBare: true) { out.append((uid, d)) }
            }
        }
        return out.sorted { ($0.uid, $0.diffID) < ($1.uid, $1.diffID) }
    }

    /// Removes one private copy, renamed into tmp first so it disappears whole.
    @discardableResult
    func removePrivateCopy(uid: UInt32, _ diffID: Digest) -> Bool {
        let dir = layout.privateLayerDir(uid: uid, diffID)
        guard FileIO.exists(dir) else { return true }
        let aside = layout.tmpDir + "/" + TempName.make("dead-private")
        let moved = rename(dir, aside) == 0
        return (try? FileIO.removeTree(moved ? aside : dir)) != nil
    }
}
