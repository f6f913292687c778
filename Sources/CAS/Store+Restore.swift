// Restoring changed files of an unpacked layer in place from the layer's blob, so that every container
// hardlinked to the same inode gets the image's content, mode and mtime back at once.
import CArchive
import CShim
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// Rewrites the regular files `paths` of the unsealed layer `diffID` from its blob: content, the
    /// store's mode and the image's mtime, keeping each file's inode. Returns the paths restored and
    /// checked against layer.json; the others could not be (no blob, not in the tar).
    func restoreInPlace(layer diffID: Digest, paths: Set<String>, manifest m: LayerManifest) -> Set<String> {
        guard !paths.isEmpty, let blob = m.blobs.first(where: { hasBlob($0) }) else { return [] }
        let entries = Dictionary(m.entries.filter { $0.kind == .file }.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        let fd = Glibc.open(layout.blobPath(blob), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { _ = close(fd) }
        guard let a = archive_read_new() else { return [] }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_tar(a)
        archive_read_support_format_gnutar(a)
        guard archive_read_open_fd(a, fd, 1 << 20) == ARCHIVE_OK else { return [] }
        let rootFD = Glibc.open(layout.layerRoot(diffID), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { return [] }
        defer { _ = close(rootFD) }
        var restored = Set<String>()
        var entry: OpaquePointer?
        while restored.count < paths.count {
            let rc = archive_read_next_header(a, &entry)
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry, let raw = archive_entry_pathname(entry) else { break }
            guard archive_entry_filetype(entry) == S_IFREG, archive_entry_hardlink(entry) == nil,
                  case .path(let p) = LayerPath.normalise(raw), paths.contains(p), let e = entries[p] else { continue }
            if rewrite(a, into: rootFD, path: p, entry: e) { restored.insert(p) }
        }
        return restored
    }

    /// Writes the current tar entry's data over the store file, then sets mode and mtime and checks
    /// the digest. The file must be the user's own (unsealed): it is made writable for the write.
    private func rewrite(_ a: OpaquePointer, into rootFD: Int32, path: String, entry e: LayerEntry) -> Bool {
        let storeMode = mode_t(Self.storeFileMode(e.mode, sealed: false))
        // Opened read-only beneath the root without following symlinks, made writable through that
        // descriptor, and reopened for writing through /proc: no path is resolved twice.
        let ro = ud_openat_beneath(rootFD, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 1)
        guard ro >= 0 else { return false }
        defer { _ = close(ro) }
        var st = stat()
        guard fstat(ro, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, fchmod(ro, 0o600) == 0 else { return false }
        let fd = Glibc.open("/proc/self/fd/\(ro)", O_RDWR | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { _ = fchmod(ro, storeMode); return false }
        defer { _ = close(fd) }
        var buf: UnsafeRawPointer?
        var size = 0
        var offset: Int64 = 0
        while true {
            let rc = archive_read_data_block(a, &buf, &size, &offset)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else { return false }
            if let buf, size > 0, pwrite(fd, buf, size, off_t(offset)) != size { return false }
        }
        if let n = e.size, ftruncate(fd, off_t(n)) != 0 { return false }
        // The data reaches the file before its mtime is set: on a network filesystem (NFS, FUSE) data
        // written back after the mtime would move the mtime again.
        _ = fsync(fd)
        _ = fchmod(fd, storeMode)
        // The atime as it was, not UTIME_OMIT: some FUSE filesystems (bindfs) then leave the mtime "now".
        var times = [st.st_atim, timespec(tv_sec: Int(e.mtime), tv_nsec: 0)]
        _ = futimens(fd, &times)
        guard lseek(fd, 0, SEEK_SET) == 0, let (d, _) = try? SHA256Hasher.hash(fd: fd, path: path) else { return false }
        return d == e.digest
    }
}
