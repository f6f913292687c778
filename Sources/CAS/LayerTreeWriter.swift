// The extracting half of the layer unpacker: creates each tar entry under the layer root with *at()
// calls relative to directory descriptors opened component by component with O_NOFOLLOW, so no entry,
// symlink or hardlink of a hostile layer can create or change anything outside the root.
import CArchive
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// Why one entry was not written; recorded as a SkippedEntry and extraction goes on.
struct SkipEntry: Error {
    let reason: String
}

/// Writes the entries of one layer into an empty directory and collects the manifest. Runs on the
/// unpacking thread; file contents are hashed by the stream's file hasher, so digests are filled in by
/// `entries(fileDigests:)` once the stream has finished.
/// The `nodes` map is the authority on what exists below the root: the root starts empty and only this
/// writer changes it, so most entries need no stat() call, and a path whose parent is a symlink of this
/// layer is refused before any system call is made (the O_NOFOLLOW opens are the second line of defence).
final class LayerTreeWriter {
    private enum NodeKind { case directory, file, symlink, fifo, device }
    private struct Node {
        var kind: NodeKind
        /// Index into `entries`, or -1 for a directory created only because a deeper entry needed it.
        var entry: Int
    }
    private struct Meta {
        var mode: UInt32, uid: UInt32, gid: UInt32, mtime: Int64, nsec: Int
    }

    // Glibc's Swift overlay does not import these (macros guarded by _GNU_SOURCE / built from shifts);
    // the values are the Linux ABI, the same on every architecture.
    static let utimeOmit = (1 << 30) - 2
    private static let oPath: Int32 = 0o10000000

    private let rootPath: String
    private let sourceName: String
    private let rootFD: Int32
    /// O_PATH descriptors of directories below the root, by normalised path; trimmed when it grows big.
    private var dirFDs: [String: Int32] = [:]
    /// The directory the previous entry went into, from `dirFDs`: tars list a directory's entries together,
    /// so this saves hashing the parent path for most entries. Cleared whenever `dirFDs` loses an entry.
    private var lastDir: (path: String, fd: Int32)?
    private let dirFDLimit: Int
    private var nodes: [String: Node] = [:]
    private(set) var entries: [LayerEntry] = []
    private var live: [Bool] = []
    /// Where each entry's digest comes from once the file hasher is done.
    private enum DigestSource { case none, file(Int), sameAs(Int) }
    private var digestSources: [DigestSource] = []
    private var rootEntry: Int?
    private var directoryTimes: [(entry: Int, time: timespec)] = []
    private(set) var whiteouts: [String] = []
    private var whiteoutSet: Set<String> = []
    private(set) var opaqueDirs: [String] = []
    private(set) var skipped: [SkippedEntry] = []
    /// Data blocks libarchive left unread after the last entry: a regular file whose name ends in "/"
    /// (e.g. one named "/") is reported as a directory and its data is not skipped (libarchive 3.6);
    /// the unpacker steps over them. See `takeDroppedDataBlocks`.
    private var droppedDataBlocks: Int64 = 0
    /// Name of the last entry read (normalised when it could be), for messages about what follows it.
    private(set) var lastName: String?
    private let stream: LayerStream
    /// Bits the process umask would clear; when a store mode has any of them, an explicit chmod follows.
    private let umaskBits: mode_t
    /// atime (left alone) and mtime for futimens/utimensat, reused so no entry allocates for it.
    private let times: UnsafeMutablePointer<timespec>
    /// Creates small files, and sets the times of the others and closes them, on threads of its own.
    private let finisher: FileFinisher
    /// Files were queued for creation since the last drain.
    private var pendingCreates = false

    init(root: String, sourceName: String, stream: LayerStream) throws {
        rootPath = root
        self.sourceName = sourceName
        self.stream = stream
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw CASError.io("open", root, errno) }
        rootFD = fd
        var lim = rlimit()
        let soft = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim) == 0 ? Int(clamping: lim.rlim_cur) : 1024
        // An eighth of the descriptor limit: a pull unpacks several layers at once, each with its cache
        // and up to `FileFinisher.capacity` open files, beside its downloads and the index.
        dirFDLimit = min(1024, max(2 * FileFinisher.capacity, soft / 8))
        umaskBits = LayerTreeWriter.currentUmask()
        times = UnsafeMutablePointer<timespec>.allocate(capacity: 2)
        times.initialize(repeating: timespec(tv_sec: 0, tv_nsec: LayerTreeWriter.utimeOmit), count: 2)
        do {
            finisher = try FileFinisher()
        } catch {
            _ = close(fd)
            times.deallocate()
            throw error
        }
    }

    deinit {
        finisher.stop()
        for fd in dirFDs.values { _ = close(fd) }
        _ = close(rootFD)
        times.deallocate()
    }

    private func times(_ mtime: timespec) -> UnsafePointer<timespec> {
        times[1] = mtime
        return UnsafePointer(times)
    }

    private func times(_ meta: Meta) -> UnsafePointer<timespec> {
        times(timespec(tv_sec: Int(meta.mtime), tv_nsec: meta.nsec))
    }

    /// The umask from /proc/self/status (reading it with umask() would race with other threads);
    /// without /proc, assume every bit may be cleared so modes are always set explicitly.
    private static func currentUmask() -> mode_t {
        guard let text = try? FileIO.readFile("/proc/self/status") else { return 0o777 }
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Umask:") {
            let digits = line.dropFirst(6).trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            if let v = mode_t(digits, radix: 8) { return v }
        }
        return 0o777
    }

    /// Store copy of a regular file or FIFO: read-only, at least owner-readable, no setuid/setgid/sticky.
    static func storeFileMode(_ mode: UInt32) -> mode_t { mode_t((mode & 0o555) | 0o400) }

    /// Store copy of a directory: owner rwx so extraction (and later removal) can go on; never group- or
    /// world-writable, so in a shared store no other user can add files to a layer.
    static func storeDirMode(_ mode: UInt32) -> mode_t { mode_t((mode & 0o755) | 0o700) }

    // MARK: - Entries

    /// Writes one tar entry (header `e` of reader `a`, whose data is read here).
    func add(_ e: OpaquePointer, from a: OpaquePointer) throws {
        try trimDirectoryCache()
        guard let raw = archive_entry_pathname(e) else {
            skipped.append(SkippedEntry(path: "", reason: "entry without a name"))
            return
        }
        let path: String
        switch LayerPath.normalise(raw) {
        case .climbsOut:
            let text = String(cString: raw)
            lastName = text
            skipped.append(SkippedEntry(path: text, reason: "path climbs out of the layer root with '..'; not created"))
            return
        case .notUTF8:
            let text = String(cString: raw)
            lastName = text
            skipped.append(SkippedEntry(path: text, reason: "name is not valid UTF-8; not created"))
            return
        case .path(let p):
            path = p
        }
        lastName = path
        // Left out like a device node: no later command could name it by its full path.
        if path.utf8.count > LayerPath.maxLength {
            skipped.append(SkippedEntry(path: path, reason: "path longer than \(LayerPath.maxLength) bytes; not created"))
            return
        }
        let (parent, name) = LayerPath.split(path)
        if name.utf8.starts(with: ".wh.".utf8) {
            addWhiteout(parent: parent, name: name, path: path)
            return
        }
        let meta = Meta(mode: UInt32(archive_entry_perm(e)) & 0o7777,
                        uid: UInt32(clamping: archive_entry_uid(e)),
                        gid: UInt32(clamping: archive_entry_gid(e)),
                        mtime: Int64(archive_entry_mtime(e)),
                        nsec: Int(archive_entry_mtime_nsec(e)))
        do {
            let hardlink = archive_entry_hardlink(e)
            let type = archive_entry_filetype(e)
            if type == S_IFDIR && hardlink == nil && archive_entry_size(e) > 0 {
                // A directory with data is either GNU's dumpdir (libarchive reads its data) or a regular
                // file named like a directory (GNU tar and udocker 1.3 accept it), whose data libarchive
                // drops: such an entry is skipped, like a device node, instead of refusing the layer.
                var block: UnsafeRawPointer?
                var count = 0
                var offset: Int64 = 0
                if archive_read_data_block(a, &block, &count, &offset) == ARCHIVE_EOF {
                    let size = archive_entry_size(e)
                    droppedDataBlocks = (size + 511) / 512
                    throw SkipEntry(reason: "regular file named '\(String(cString: raw))' (ends with '/'), \(size) bytes; not created")
                }
            }
            if path.isEmpty {
                // The root itself ("./" or "/"): it exists already; only a directory may describe it.
                guard hardlink == nil && type == S_IFDIR else {
                    throw SkipEntry(reason: "entry would replace the layer root; not created")
                }
                if let earlier = rootEntry { live[earlier] = false }
                record(LayerEntry(path: "", kind: .directory, mode: meta.mode, uid: meta.uid, gid: meta.gid,
                                  mtime: meta.mtime), node: nil)
                rootEntry = entries.count - 1
                return
            }
            let parentFD = try directoryFD(parent)
            if let hardlink {
                try addHardlink(path: path, parentFD: parentFD, name: name, rawTarget: hardlink, meta: meta)
                return
            }
            switch type {
            case S_IFREG:
                try addFile(path: path, parentFD: parentFD, name: name, meta: meta,
                            size: archive_entry_size(e), from: a)
            case S_IFDIR:
                try addDirectory(path: path, parentFD: parentFD, name: name, meta: meta)
            case S_IFLNK:
                try addSymlink(path: path, parentFD: parentFD, name: name, rawTarget: archive_entry_symlink(e),
                               meta: meta)
            case S_IFIFO:
                try addFIFO(path: path, parentFD: parentFD, name: name, meta: meta)
            case S_IFCHR, S_IFBLK:
                try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: false)
                record(LayerEntry(path: path, kind: type == S_IFCHR ? .charDevice : .blockDevice,
                                  mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime,
                                  devMajor: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(e)),
                                  devMinor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(e))),
                       node: .device)
                throw SkipEntry(reason: "device node not created: unprivileged")
            default:
                throw SkipEntry(reason: "unsupported entry type (mode \(String(type, radix: 8))); not created")
            }
        } catch let s as SkipEntry {
            skipped.append(SkippedEntry(path: path, reason: s.reason))
        }
    }

    /// How many 512-byte blocks of the last entry's data the tar reader did not skip (and resets it).
    func takeDroppedDataBlocks() -> Int64 {
        defer { droppedDataBlocks = 0 }
        return droppedDataBlocks
    }

    private func addWhiteout(parent: String, name: String, path: String) {
        if name == ".wh..wh..opq" {
            if !opaqueDirs.contains(parent) { opaqueDirs.append(parent) }
            return
        }
        if name.hasPrefix(".wh..wh.") {
            skipped.append(SkippedEntry(path: path, reason: "aufs metadata entry ignored"))
            return
        }
        let target = String(name.dropFirst(4))
        if target.isEmpty || target == "." || target == ".." {
            skipped.append(SkippedEntry(path: path, reason: "malformed whiteout ignored"))
            return
        }
        let hidden = parent.isEmpty ? target : parent + "/" + target
        if whiteoutSet.insert(hidden).inserted { whiteouts.append(hidden) }
    }

    private func record(_ entry: LayerEntry, node: NodeKind?, digest: DigestSource = .none) {
        entries.append(entry)
        live.append(true)
        digestSources.append(digest)
        if let node { nodes[entry.path] = Node(kind: node, entry: entries.count - 1) }
    }

    private func addFile(path: String, parentFD: Int32, name: String, meta: Meta, size: Int64,
                         from a: OpaquePointer) throws {
        try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: false)
        let mode = LayerTreeWriter.storeFileMode(meta.mode)
        // A name longer than NAME_MAX is refused here, inline, so it is skipped in tar order.
        if size >= 0 && size <= FileFinisher.createLimit && name.utf8.count <= 255 {
            try addSmallFile(path: path, parentFD: parentFD, name: name, meta: meta, mode: mode, size: Int(size),
                             from: a)
            return
        }
        // withCString: passing the String straight to openat() copies a short name into a new array.
        var fd = name.withCString { openat(parentFD, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
        if fd < 0 { throw creationError("open", path) }
        defer { if fd >= 0 { _ = close(fd) } }

        let fileNumber = stream.beginFile()
        // Holes of a sparse file are part of the content, left unwritten.
        var pos = try readData(a, path: path) { block, count, offset in
            try writeAll(fd, block, count, at: offset, path: path)
        }
        if pos < size {
            stream.fileZeros(size - pos)
            if ftruncate(fd, off_t(size)) != 0 { throw CASError.io("truncate", rootPath + "/" + path, errno) }
            pos = size
        }
        stream.endFile()
        record(LayerEntry(path: path, kind: .file, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime,
                          size: UInt64(pos)), node: .file, digest: .file(fileNumber))
        // The content is written: times, mode and close happen on the finisher's thread.
        let job = FileFinisher.Job(fd: fd, mtime: timespec(tv_sec: Int(meta.mtime), tv_nsec: meta.nsec), mode: mode,
                                   chmod: mode & umaskBits != 0, entry: entries.count - 1)
        if let failure = finisher.submit(job) { throw finisherError(failure) }
        fd = -1
    }

    /// A small file's content is read into a buffer of its own and the file is created, written, timed and
    /// closed by a finisher thread, so the unpacking thread makes no system call for it. Holes of a sparse
    /// file are written as zeros (the content, hence the digest, is the same).
    private func addSmallFile(path: String, parentFD: Int32, name: String, meta: Meta, mode: mode_t, size: Int,
                              from a: OpaquePointer) throws {
        let mtime = timespec(tv_sec: Int(meta.mtime), tv_nsec: meta.nsec)
        var job = finisher.createJob(dirFD: parentFD, name: name, size: size, mtime: mtime, mode: mode,
                                     chmod: mode & umaskBits != 0, entry: entries.count)
        var submitted = false
        defer { if !submitted { finisher.release(job) } }
        let fileNumber = stream.beginFile()
        var filled = 0
        let end = try readData(a, path: path) { block, count, offset in
            guard offset + Int64(count) <= Int64(size), let content = job.content else {
                throw CASError.badLayer("\(sourceName): entry '\(path)': more data than the entry's size of \(size) bytes (corrupt header or sparse map)")
            }
            if Int(offset) > filled {
                (content + filled).initializeMemory(as: UInt8.self, repeating: 0, count: Int(offset) - filled)
            }
            (content + Int(offset)).copyMemory(from: block, byteCount: count)
            filled = Int(offset) + count
        }
        if end < Int64(size) { stream.fileZeros(Int64(size) - end) }
        if filled < size, let content = job.content {
            (content + filled).initializeMemory(as: UInt8.self, repeating: 0, count: size - filled)
        }
        stream.endFile()
        record(LayerEntry(path: path, kind: .file, mode: meta.mode, uid: meta.uid, gid: meta.gid, mtime: meta.mtime,
                          size: UInt64(size)), node: .file, digest: .file(fileNumber))
        job.entry = entries.count - 1
        submitted = true
        if let failure = finisher.submit(job) { throw finisherError(failure) }
        pendingCreates = true
    }

    /// Reads the current entry's data block by block and hashes it: `body(block, count, offset)` gets
    /// each non-empty block, in order, after any hole before it has been hashed as zeros (a hole at the
    /// end is the caller's). Returns where the data ends. A read error or blocks out of order are a
    /// `badLayer` error naming `path`.
    private func readData(_ a: OpaquePointer, path: String,
                          _ body: (UnsafeRawPointer, Int, Int64) throws -> Void) throws -> Int64 {
        var pos: Int64 = 0
        var block: UnsafeRawPointer?
        var count = 0
        var offset: Int64 = 0
        while true {
            let r = archive_read_data_block(a, &block, &count, &offset)
            if r == ARCHIVE_EOF { return pos }
            if r != ARCHIVE_OK && r != ARCHIVE_WARN {
                throw CASError.badLayer("\(sourceName): entry '\(path)': \(stream.failure ?? LayerStream.errorText(a)) (the layer is truncated or corrupt; pull the image again)")
            }
            if offset < pos {
                throw CASError.badLayer("\(sourceName): entry '\(path)': data blocks out of order (corrupt sparse map)")
            }
            if offset > pos {
                stream.fileZeros(offset - pos)
                pos = offset
            }
            guard let block, count > 0 else { continue }
            stream.fileData(block, count)
            try body(block, count, offset)
            pos += Int64(count)
        }
    }

    /// Waits for the finisher threads; applies the skips of names the filesystem refused. Needed before
    /// anything that relies on the files queued so far existing (a hardlink, a replacement, a removal)
    /// and before a directory descriptor they use is closed.
    private func drainFinisher() throws {
        if let failure = finisher.drain() { throw finisherError(failure) }
        pendingCreates = false
        for s in finisher.takeSkips() {
            let path = entries[s.entry].path
            live[s.entry] = false
            if nodes[path]?.entry == s.entry { nodes[path] = nil }
            skipped.append(SkippedEntry(path: path, reason: "\(s.op): \(String(cString: strerror(s.err))); not created"))
        }
    }

    /// An earlier file's times, mode or close failed on the finisher's thread.
    private func finisherError(_ f: FileFinisher.Failure) -> Error {
        CASError.io(f.op, rootPath + "/" + entries[f.entry].path, f.err)
    }

    private func writeAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, at offset: Int64, path: String) throws {
        var done = 0
        while done < count {
            let n = pwrite(fd, base + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("write", rootPath + "/" + path, errno)
            }
            done += n
        }
    }

    private func addDirectory(path: String, parentFD: Int32, name: String, meta: Meta) throws {
        let mode = LayerTreeWriter.storeDirMode(meta.mode)
        if try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: true) {
            // Same path seen again as a directory: keep it and its content, take the later metadata.
            if fchmodat(parentFD, name, mode, 0) != 0 { throw CASError.io("chmod", rootPath + "/" + path, errno) }
        } else {
            if mkdirat(parentFD, name, mode) != 0 { throw creationError("mkdir", path) }
            if mode & umaskBits != 0 && fchmodat(parentFD, name, mode, 0) != 0 {
                throw CASError.io("chmod", rootPath + "/" + path, errno)
            }
        }
        record(LayerEntry(path: path, kind: .directory, mode: meta.mode, uid: meta.uid, gid: meta.gid,
                          mtime: meta.mtime), node: .directory)
        directoryTimes.append((entries.count - 1, timespec(tv_sec: Int(meta.mtime), tv_nsec: meta.nsec)))
    }

    private func addSymlink(path: String, parentFD: Int32, name: String, rawTarget: UnsafePointer<CChar>?,
                            meta: Meta) throws {
        guard let rawTarget, rawTarget[0] != 0 else { throw SkipEntry(reason: "symlink without a target; not created") }
        guard let target = String(validatingCString: rawTarget) else {
            throw SkipEntry(reason: "symlink target is not valid UTF-8; not created")
        }
        try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: false)
        if symlinkat(rawTarget, parentFD, name) != 0 { throw creationError("symlink", path) }
        try setTimes(parentFD, name, path: path, meta: meta)
        record(LayerEntry(path: path, kind: .symlink, mode: meta.mode, uid: meta.uid, gid: meta.gid,
                          mtime: meta.mtime, target: target), node: .symlink)
    }

    private func addFIFO(path: String, parentFD: Int32, name: String, meta: Meta) throws {
        try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: false)
        let mode = LayerTreeWriter.storeFileMode(meta.mode)
        if mkfifoat(parentFD, name, mode) != 0 { throw creationError("mkfifo", path) }
        if mode & umaskBits != 0 && fchmodat(parentFD, name, mode, 0) != 0 {
            throw CASError.io("chmod", rootPath + "/" + path, errno)
        }
        try setTimes(parentFD, name, path: path, meta: meta)
        record(LayerEntry(path: path, kind: .fifo, mode: meta.mode, uid: meta.uid, gid: meta.gid,
                          mtime: meta.mtime), node: .fifo)
    }

    /// A hardlink is made only to an entry this layer already wrote, with linkat() relative to directory
    /// descriptors opened without following symlinks, and without AT_SYMLINK_FOLLOW: so its target can
    /// never be a host file, whether named "/etc/passwd", "../../x" or "symlink-to-/etc/passwd".
    private func addHardlink(path: String, parentFD: Int32, name: String, rawTarget: UnsafePointer<CChar>,
                             meta: Meta) throws {
        let target: String
        switch LayerPath.normalise(rawTarget) {
        case .climbsOut:
            throw SkipEntry(reason: "hardlink target '\(String(cString: rawTarget))' is outside the layer root; not created")
        case .notUTF8:
            throw SkipEntry(reason: "hardlink target is not valid UTF-8; not created")
        case .path(let p):
            target = p
        }
        if target == path { throw SkipEntry(reason: "hardlink to itself ignored") }
        // The target may still be queued for creation (or be refused its name).
        if pendingCreates { try drainFinisher() }
        guard let node = nodes[target], node.kind != .directory, node.kind != .device else {
            throw SkipEntry(reason: "hardlink target '\(target)' is not a file written earlier by this layer; not created")
        }
        try replaceExisting(path: path, parentFD: parentFD, name: name, keepDirectory: false)
        // Replacing `path` may have removed a directory holding the target.
        guard let current = nodes[target] else {
            throw SkipEntry(reason: "hardlink target '\(target)' was removed by this entry; not created")
        }
        let (targetParent, targetName) = LayerPath.split(target)
        let targetParentFD = try directoryFD(targetParent)
        if linkat(targetParentFD, targetName, parentFD, name, 0) != 0 {
            let err = errno
            // Only when the filesystem refuses the link (too many links, protected_hardlinks): copy instead.
            guard (err == EMLINK || err == EPERM) && current.kind == .file else { throw creationError("link", path, err) }
            // The copy takes the target's mtime, which the finisher may not have set yet.
            try drainFinisher()
            try copyFile(from: targetParentFD, targetName, to: parentFD, name, path: path)
        }
        var linked = LayerEntry(path: path, kind: .hardlink, mode: meta.mode, uid: meta.uid, gid: meta.gid,
                                mtime: meta.mtime, target: target)
        var digest = DigestSource.none
        if current.entry >= 0 {
            linked.size = entries[current.entry].size
            digest = .sameAs(current.entry)
        }
        record(linked, node: current.kind, digest: digest)
    }

    private func copyFile(from srcDir: Int32, _ srcName: String, to dstDir: Int32, _ dstName: String, path: String) throws {
        let src = openat(srcDir, srcName, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if src < 0 { throw CASError.io("open", rootPath + "/" + path, errno) }
        defer { _ = close(src) }
        var st = stat()
        if fstat(src, &st) != 0 { throw CASError.io("stat", rootPath + "/" + path, errno) }
        let dst = openat(dstDir, dstName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0o7777)
        if dst < 0 { throw creationError("open", path) }
        defer { _ = close(dst) }
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buf.deallocate() }
        var pos: Int64 = 0
        while true {
            let n = read(src, buf, 1 << 20)
            if n < 0 {
                if errno == EINTR { continue }
                throw CASError.io("read", rootPath + "/" + path, errno)
            }
            if n == 0 { break }
            try writeAll(dst, buf, n, at: pos, path: path)
            pos += Int64(n)
        }
        _ = futimens(dst, times(st.st_mtim))
        if fchmod(dst, st.st_mode & 0o7777) != 0 { throw CASError.io("chmod", rootPath + "/" + path, errno) }
    }

    private func setTimes(_ dirFD: Int32, _ name: String, path: String, meta: Meta) throws {
        if utimensat(dirFD, name, times(meta), AT_SYMLINK_NOFOLLOW) != 0 {
            throw CASError.io("set times of", rootPath + "/" + path, errno)
        }
    }

    /// Fatal errors (disk full, read-only, quota) stop the unpack; a name the filesystem cannot hold
    /// skips just that entry.
    private func creationError(_ op: String, _ path: String, _ err: Int32 = errno) -> Error {
        if err == ENAMETOOLONG || err == EILSEQ {
            return SkipEntry(reason: "\(op): \(String(cString: strerror(err))); not created")
        }
        return CASError.io(op, rootPath + "/" + path, err)
    }

    // MARK: - Later entries replace earlier ones

    /// Makes room for a new entry at `path`: an earlier non-directory (symlink included: it is removed,
    /// never written through) is unlinked; an earlier directory is removed with its content unless the new
    /// entry is a directory too (`keepDirectory`), in which case true is returned and nothing changes.
    @discardableResult
    private func replaceExisting(path: String, parentFD: Int32, name: String, keepDirectory: Bool) throws -> Bool {
        guard let old = nodes[path] else { return false }
        // What is replaced or removed may still be queued for creation.
        if pendingCreates && !(old.kind == .directory && keepDirectory) { try drainFinisher() }
        if old.kind == .directory {
            if keepDirectory {
                if old.entry >= 0 { live[old.entry] = false }
                return true
            }
            try removeTree(parentFD, name, path: path)
            forgetTree(path)
            return false
        }
        if old.kind != .device && unlinkat(parentFD, name, 0) != 0 && errno != ENOENT {
            throw CASError.io("remove", rootPath + "/" + path, errno)
        }
        if old.entry >= 0 { live[old.entry] = false }
        nodes[path] = nil
        return false
    }

    private func removeTree(_ parentFD: Int32, _ name: String, path: String) throws {
        let fd = openat(parentFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 { throw CASError.io("open", rootPath + "/" + path, errno) }
        guard let dir = fdopendir(fd) else {
            let e = errno
            _ = close(fd)
            throw CASError.io("opendir", rootPath + "/" + path, e)
        }
        defer { closedir(dir) }
        var children: [(String, Bool)] = []
        while let d = readdir(dir) {
            let child = withUnsafeBytes(of: d.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if child == "." || child == ".." { continue }
            children.append((child, d.pointee.d_type == UInt8(DT_DIR)))
        }
        for (child, isDir) in children {
            if isDir {
                try removeTree(fd, child, path: path + "/" + child)
            } else if unlinkat(fd, child, 0) != 0 && errno != ENOENT {
                throw CASError.io("remove", rootPath + "/" + path + "/" + child, errno)
            }
        }
        if unlinkat(parentFD, name, AT_REMOVEDIR) != 0 {
            throw CASError.io("remove", rootPath + "/" + path, errno)
        }
    }

    /// Drops a removed directory and everything below it from the maps, the descriptor cache and the manifest.
    private func forgetTree(_ path: String) {
        let prefix = path + "/"
        for (p, node) in nodes where p == path || p.hasPrefix(prefix) {
            if node.entry >= 0 { live[node.entry] = false }
            nodes[p] = nil
        }
        for (p, fd) in dirFDs where p == path || p.hasPrefix(prefix) {
            _ = close(fd)
            dirFDs[p] = nil
            lastDir = nil
        }
    }

    // MARK: - Directory descriptors

    /// Closes the cached directory descriptors no queued file is still to be created in (the finishers
    /// take new files only from this thread, so that set can only shrink meanwhile); when every one is
    /// in use, waits for the finishers and closes them all.
    private func trimDirectoryCache() throws {
        if dirFDs.count < dirFDLimit { return }
        let inUse = finisher.directoriesInUse()
        let before = dirFDs.count
        for (path, fd) in dirFDs where !inUse.contains(fd) {
            _ = close(fd)
            dirFDs[path] = nil
        }
        if let last = lastDir, !inUse.contains(last.fd) { lastDir = nil }
        if dirFDs.count < before { return }
        try drainFinisher()
        for fd in dirFDs.values { _ = close(fd) }
        dirFDs.removeAll(keepingCapacity: true)
        lastDir = nil
    }

    /// Descriptor of directory `path` ("" = root), creating missing directories (0755, like tar does for
    /// parents a tar does not list). Opens one component at a time with O_NOFOLLOW|O_DIRECTORY, so a
    /// symlink on the way is refused, never followed. The descriptor stays owned by the cache.
    private func directoryFD(_ path: String) throws -> Int32 {
        if path.isEmpty { return rootFD }
        if let last = lastDir, last.path == path { return last.fd }
        if let fd = dirFDs[path] {
            lastDir = (path, fd)
            return fd
        }
        var fd = rootFD
        var transient: Int32 = -1   // an uncached intermediate descriptor, closed once passed
        defer { if transient >= 0 { _ = close(transient) } }
        var prefix = ""
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        for (i, comp) in components.enumerated() {
            prefix = prefix.isEmpty ? String(comp) : prefix + "/" + comp
            if let cached = dirFDs[prefix] {
                if transient >= 0 { _ = close(transient) }
                transient = -1
                fd = cached
                continue
            }
            let name = String(comp)
            var created = false
            switch nodes[prefix]?.kind {
            case .directory?:
                break
            case nil:
                // A parent the tar does not list. The open below checks that what is there is a directory.
                if mkdirat(fd, name, 0o755) == 0 {
                    created = true
                } else if errno != EEXIST {
                    throw creationError("mkdir", prefix)
                }
            case .symlink?:
                throw SkipEntry(reason: "parent '\(prefix)' is a symlink; not followed, entry not created")
            default:
                throw SkipEntry(reason: "parent '\(prefix)' is not a directory; entry not created")
            }
            let next = openat(fd, name, LayerTreeWriter.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 {
                let err = errno
                if err == ELOOP || err == ENOTDIR {
                    throw SkipEntry(reason: "parent '\(prefix)' is not a directory; not followed, entry not created")
                }
                throw CASError.io("open", rootPath + "/" + prefix, err)
            }
            if created && 0o755 & umaskBits != 0 { _ = fchmodat(fd, name, 0o755, 0) }
            if nodes[prefix] == nil { nodes[prefix] = Node(kind: .directory, entry: -1) }
            if transient >= 0 { _ = close(transient) }
            transient = -1
            if i == components.count - 1 || dirFDs.count < dirFDLimit {
                dirFDs[prefix] = next
                if i == components.count - 1 { lastDir = (prefix, next) }
            } else {
                transient = next
            }
            fd = next
        }
        return fd
    }

    // MARK: - End

    /// Sets directory mtimes once nothing more is created inside them.
    func finish() throws {
        try drainFinisher()
        for (index, time) in directoryTimes where live[index] {
            try trimDirectoryCache()
            let path = entries[index].path
            let (parent, name) = LayerPath.split(path)
            let parentFD: Int32
            do {
                parentFD = try directoryFD(parent)
            } catch is SkipEntry {
                continue
            }
            if utimensat(parentFD, name, times(time), AT_SYMLINK_NOFOLLOW) != 0 {
                throw CASError.io("set times of", rootPath + "/" + path, errno)
            }
        }
        for fd in dirFDs.values { _ = close(fd) }
        dirFDs.removeAll()
        lastDir = nil
    }

    /// Entries still present, in tar order (an entry replaced by a later one of the same path is gone),
    /// with the digests the file hasher computed (`fileDigests`, in `beginFile()` order). A hardlink gets
    /// the digest of the entry it links to, which always comes before it.
    func entries(fileDigests: [Digest]) throws -> [LayerEntry] {
        for i in entries.indices {
            switch digestSources[i] {
            case .none:
                break
            case .file(let n):
                guard n < fileDigests.count else {
                    throw CASError.internalFailure("layer unpacker: no digest for file \(entries[i].path)")
                }
                entries[i].digest = fileDigests[n]
            case .sameAs(let j):
                entries[i].digest = entries[j].digest
            }
        }
        if !live.contains(false) { return entries }
        var out = [LayerEntry]()
        out.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() where live[i] { out.append(e) }
        return out
    }
}
