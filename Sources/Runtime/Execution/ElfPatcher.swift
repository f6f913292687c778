// F3/F4: points every dynamic ELF file's interpreter and rpath inside ROOT (patchelf), keeping each
// original aside so switching back restores the tree byte for byte; the store's files are never written.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation

/// What `ElfPatcher.patch` changed in a container.
public struct ElfPatchRecord: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        /// Path below ROOT, e.g. "usr/bin/sh".
        public var path: String
        /// sha256 of the original and of the patched file.
        public var original: String
        public var patched: String
        /// Where the original is kept, below the container's directory.
        public var aside: String?
        /// The original interpreter, rpath and runpath (to revert when the original is gone).
        public var interpreter: String?
        public var rpath: String?
        public var runpath: String?
    }

    public var format = 1
    public var mode: String
    /// The real path of ROOT the files were patched for.
    public var root: String
    public var loader: String
    public var libraryDirs: [String]
    public var date: String
    public var files: [File]
}

/// Patches and restores a container's ELF files. The original of each file is kept aside as a
/// hardlink (a file shared with the store costs nothing), the patched file is a new file renamed over
/// it, and elfpatch.json records what changed (paths, sha256 of original and patched, the old
/// interpreter and rpath, the ROOT patched for).
public struct ElfPatcher: Sendable {
    public static let recordFile = "elfpatch.json"
    /// Just the ROOT path of the record, read by every F3/F4 run.
    public static let rootFile = "elfpatch.root"
    public static let asideDir = "elfpatch.orig"

    public let containerDir: String
    public let patchelf: String
    /// The ids of a sealed store's files (linked files of the container belong to its subordinate uid).
    let sealOwner: SealOwner?

    public init(containerDir: String, patchelf: String) {
        self.containerDir = containerDir
        self.patchelf = patchelf
        sealOwner = StoreProtection.detect(environment: ProcessInfo.processInfo.environment, network: false).owner
    }

    // MARK: record

    public static func readRecord(containerDir: String) throws -> ElfPatchRecord? {
        let p = containerDir + "/" + recordFile
        guard FileIO.exists(p) else { return nil }
        let bytes = try ContainerStore.io { try FileIO.readFile(p) }
        do { return try JSONDecoder().decode(ElfPatchRecord.self, from: Data(bytes)) } catch {
            throw RuntimeError.badContainer(path: containerDir, reason: "its \(recordFile) cannot be read (\(error))")
        }
    }

    /// The ROOT the container's files were patched for, or nil when they are not patched.
    public static func patchedRoot(containerDir: String) -> String? {
        guard let b = try? FileIO.readFile(containerDir + "/" + rootFile) else { return nil }
        let s = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }

    private func writeRecord(_ record: ElfPatchRecord) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? e.encode(record) else { throw RuntimeError.internalFailure("encoding \(Self.recordFile)") }
        try ContainerStore.io {
            try FileIO.writeAtomically(containerDir + "/" + Self.recordFile, Array(data) + [10], mode: 0o644)
            try FileIO.writeAtomically(containerDir + "/" + Self.rootFile, Array((record.root + "\n").utf8), mode: 0o644)
        }
    }

    private func removeRecord() {
        _ = unlink(containerDir + "/" + Self.rootFile)
        _ = unlink(containerDir + "/" + Self.recordFile)
        try? FileIO.removeTree(containerDir + "/" + Self.asideDir)
    }

    // MARK: patching

    private struct Candidate {
        var path: String
        var host: String
        var elf: ElfFile
        var newInterpreter: String?
        var newRpath: String
        var keepRunpath: Bool
        var mode: mode_t
        var mtime: timespec
        var owner: uid_t
        var original = ""
        var aside = ""
        var temp = ""
    }

    /// Patches every dynamic ELF file of the tree for `tree.root`. Returns the record written.
    public func patch(tree: FakechrootTree, mode: ExecMode, loader: String) throws -> (record: ElfPatchRecord, notes: [String]) {
        var notes: [String] = []
        let libraryDirs = tree.libraryDirs(refresh: true).filter { $0.hasPrefix("/") }
        var candidates: [Candidate] = []
        var foreign = 0
        collect(tree.root, tree: tree, libraryDirs: libraryDirs, into: &candidates, foreign: &foreign, notes: &notes, depth: 0)
        if foreign > 0 { notes.append("\(foreign) ELF files owned by other users were left as they are") }

        let asides = containerDir + "/" + Self.asideDir
        try? FileIO.removeTree(asides)
        try ContainerStore.io { try FileIO.mkdirs(asides, mode: 0o700) }
        let copier = FileCopier()
        for n in candidates.indices { candidates[n].aside = Self.asideDir + "/\(n)" }
        let asideFailures = keepAside(candidates, in: asides, copier: copier)
        var prepared: [Candidate] = []
        for (n, var c) in candidates.enumerated() {
            do {
                if let e = asideFailures[n] { throw e }
                c.original = try ContainerStore.io { try SHA256Hasher.hash(fileAt: c.host) }.0.hex
                c.temp = try copyBeside(c.host, mode: c.mode | 0o200, copier: copier, tag: n)
                prepared.append(c)
            } catch {
                notes.append("\(c.path) left as it is: \(error)")
            }
        }

        // One patchelf call for every file that gets the same options.
        var groups: [[String]: [Int]] = [:]
        for (i, c) in prepared.enumerated() { groups[options(c), default: []].append(i) }
        var failed = Set<Int>()
        for (opts, members) in groups.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            for chunk in stride(from: 0, to: members.count, by: 200).map({ Array(members[$0..<min($0 + 200, members.count)]) }) {
                if run(opts + chunk.map { prepared[$0].temp }) == nil { continue }
                for i in chunk {
                    if let why = run(opts + [prepared[i].temp]) {
                        failed.insert(i)
                        notes.append("\(prepared[i].path) left as it is: patchelf failed: \(why)")
                    }
                }
            }
        }
        var files: [ElfPatchRecord.File] = []
        var done: [Candidate] = []
        for (i, c) in prepared.enumerated() {
            if failed.contains(i) {
                _ = unlink(c.temp)
                _ = unlink(containerDir + "/" + c.aside)
                continue
            }
            _ = chmod(c.temp, c.mode)
            var times = AtFile.times(c.mtime)
            _ = utimensat(AT_FDCWD, c.temp, &times, AT_SYMLINK_NOFOLLOW)
            let patched = try ContainerStore.io { try SHA256Hasher.hash(fileAt: c.temp) }.0.hex
            files.append(.init(path: c.path, original: c.original, patched: patched, aside: c.aside,
                               interpreter: c.elf.interpreter, rpath: c.elf.rpath, runpath: c.elf.runpath))
            done.append(c)
        }
        let record = ElfPatchRecord(mode: mode.rawValue, root: tree.root, loader: loader,
                                    libraryDirs: libraryDirs.compactMap { tree.containerPath(ofHost: $0) },
                                    date: Timestamp.utc(Date()), files: files)
        // The record first: a crash between here and the last rename leaves files that `restore`
        // recognises as original or patched.
        try writeRecord(record)
        do {
            for c in done {
                try withWritableParent(c.host) {
                    if rename(c.temp, c.host) != 0 { throw RuntimeError.io("rename", c.host, errno) }
                }
            }
        } catch {
            // Never leave a half-patched tree recorded as patched.
            for c in done { _ = unlink(c.temp) }
            _ = try? restore(record, root: tree.root)
            throw error
        }
        return (record, notes)
    }

    private func options(_ c: Candidate) -> [String] {
        var o: [String] = []
        if let i = c.newInterpreter { o += ["--set-interpreter", i] }
        o += (c.keepRunpath ? [] : ["--force-rpath"]) + ["--set-rpath", c.newRpath]
        return o
    }

    /// Runs patchelf; nil on success, else its message.
    private func run(_ args: [String]) -> String? {
        guard let r = Launcher.capture([patchelf] + args) else { return "\(patchelf) cannot be started" }
        return r.status == 0 ? nil : r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func collect(_ dir: String, tree: FakechrootTree, libraryDirs: [String], into out: inout [Candidate],
                         foreign: inout Int, notes: inout [String], depth: Int) {
        guard depth < 256, let names = try? FileIO.listDirectory(dir) else { return }
        let uid = getuid()
        let sealedUID = sealOwner?.subuid
        for n in names.sorted() {
            let host = dir + "/" + n
            var st = stat()
            guard lstat(host, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                if depth == 0 && ["proc", "sys", "dev"].contains(n) { continue }
                collect(host, tree: tree, libraryDirs: libraryDirs, into: &out, foreign: &foreign, notes: &notes, depth: depth + 1)
            case S_IFREG:
                // Our own temporary files: left by an interrupted setup (swept), or not ours to patch.
                if n.hasPrefix(".") && n.contains(".udocker-elf-") { _ = unlink(host); continue }
                if n.hasPrefix(".") && n.contains(".udocker-") { continue }
                guard let elf = ElfFile.read(host), elf.interpreter != nil || elf.needed > 0 else { continue }
                // A linked file of a sealed store belongs to the user's subordinate uid: it is patched
                // as a copy like the user's own (the original is kept aside, as a link).
                guard uid == 0 || st.st_uid == uid || (sealedUID != nil && st.st_uid == sealedUID && st.st_nlink > 1) else {
                    foreign += 1
                    continue
                }
                var newInterpreter: String? = nil
                if let i = elf.interpreter, !i.hasPrefix(tree.root + "/") {
                    if let h = tree.hostLoader(i) { newInterpreter = h } else {
                        notes.append("\(host.dropFirst(tree.root.count + 1)): its interpreter \(i) is not in the container")
                    }
                }
                // Entries it had ($ORIGIN kept, absolute ones moved inside ROOT), then the container's.
                var entries: [String] = []
                for e in (elf.rpath ?? elf.runpath ?? "").split(separator: ":").map(String.init) where !e.isEmpty {
                    if e.hasPrefix("/") && !e.hasPrefix(tree.root + "/") { entries.append(tree.inside(e) ?? tree.root + e) } else { entries.append(e) }
                }
                for d in libraryDirs where !entries.contains(d) { entries.append(d) }
                out.append(Candidate(path: String(host.dropFirst(tree.root.count + 1)), host: host, elf: elf,
                                     newInterpreter: newInterpreter, newRpath: entries.joined(separator: ":"),
                                     keepRunpath: elf.runpath != nil && elf.rpath == nil,
                                     mode: st.st_mode & 0o7777, mtime: st.st_mtim, owner: st.st_uid))
            default:
                continue
            }
        }
    }

    /// A second name for each original (its inode stays the store's or the container's), else a copy.
    /// Files of a sealed store belong to the user's subordinate uid, which only a user namespace may
    /// link; those links are made in one batch. Returns the candidates whose original could not be kept.
    private func keepAside(_ candidates: [Candidate], in asides: String, copier: FileCopier) -> [Int: Error] {
        var failures = [Int: Error]()
        var sealed = [Int]()
        let owner = sealOwner
        for (n, c) in candidates.enumerated() {
            let aside = containerDir + "/" + c.aside
            _ = unlink(aside)
            if let owner, c.owner == owner.subuid { sealed.append(n); continue }
            if link(c.host, aside) == 0 { continue }
            do { try copyFile(c.host, to: aside, mode: nil, copier: copier) } catch { failures[n] = error }
        }
        guard let owner, !sealed.isEmpty else { return failures }
        var linked = Set<Int>()
        let asidesFD = open(asides, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if asidesFD >= 0 {
            defer { _ = close(asidesFD) }
            var dirs = [String: Int32]()
            defer { for fd in dirs.values { _ = close(fd) } }
            var byDir = [String: [Int]]()
            for n in sealed { byDir[FileIO.parent(of: candidates[n].host), default: []].append(n) }
            var jobs = [NamespaceJob](), members = [[Int]]()
            for (dir, ns) in byDir.sorted(by: { $0.key < $1.key }) {
                let fd = open(dir, AtFile.oPath | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard fd >= 0 else { continue }
                dirs[dir] = fd
                jobs.append(.link(from: fd, "", to: asidesFD, "", names: ns.map { FileIO.basename(of: candidates[$0].host) },
                                  as: ns.map { FileIO.basename(of: candidates[$0].aside) }))
                members.append(ns)
            }
            if let results = try? UserNamespace.run(jobs, owner: owner, children: 1) {
                for (ns, r) in zip(members, results) { for (n, e) in zip(ns, r) where e == 0 { linked.insert(n) } }
            }
        }
        for n in sealed where !linked.contains(n) {
            do { try copyFile(candidates[n].host, to: containerDir + "/" + candidates[n].aside, mode: nil, copier: copier) } catch {
                failures[n] = error
            }
        }
        return failures
    }

    /// A copy of `host` in its own directory, writable, for patchelf to change.
    private func copyBeside(_ host: String, mode: mode_t, copier: FileCopier, tag: Int) throws -> String {
        let temp = FileIO.parent(of: host) + "/.\(FileIO.basename(of: host).prefix(40)).udocker-elf-\(getpid())-\(tag)"
        _ = unlink(temp)
        try withWritableParent(host) { try copyFile(host, to: temp, mode: mode, copier: copier) }
        return temp
    }

    private func copyFile(_ src: String, to dst: String, mode: mode_t?, copier: FileCopier) throws {
        let s = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        if s < 0 { throw RuntimeError.io("open", src, errno) }
        defer { _ = close(s) }
        var st = stat()
        if fstat(s, &st) != 0 { throw RuntimeError.io("stat", src, errno) }
        let m = mode ?? (st.st_mode & 0o7777)
        let d = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, m | 0o200)
        if d < 0 { throw RuntimeError.io("create", dst, errno) }
        do {
            try copier.copy(from: s, to: d, size: UInt64(st.st_size), path: src)
            _ = fchmod(d, m)
            AtFile.setMtime(fd: d, st.st_mtim)
            _ = close(d)
        } catch {
            _ = close(d)
            _ = unlink(dst)
            throw error
        }
    }

    /// Runs `body` with the file's directory owner-writable (images may have read-only ones).
    private func withWritableParent<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let dir = FileIO.parent(of: path)
        var st = stat()
        guard lstat(dir, &st) == 0, st.st_mode & 0o200 == 0 else { return try body() }
        _ = chmod(dir, (st.st_mode & 0o7777) | 0o200)
        defer { _ = chmod(dir, st.st_mode & 0o7777) }
        return try body()
    }

    // MARK: restoring

    public struct Restored: Sendable, Equatable {
        /// Files put back byte for byte.
        public var restored = 0
        /// Files whose original was gone: interpreter and rpath set back with patchelf.
        public var reverted = 0
        /// Files changed inside the container since they were patched: kept, interpreter and rpath set back.
        public var changed = 0
        /// Files removed inside the container since.
        public var missing = 0
    }

    /// Puts every patched file of the record back as it was, then removes the record.
    public func restore(_ record: ElfPatchRecord, root: String) throws -> (Restored, [String]) {
        var r = Restored()
        var notes: [String] = []
        let copier = FileCopier()
        for (n, f) in record.files.enumerated() {
            let host = root + "/" + f.path
            var st = stat()
            guard lstat(host, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
                r.missing += 1
                continue
            }
            let current = try ContainerStore.io { try SHA256Hasher.hash(fileAt: host) }.0.hex
            if current == f.original { continue }
            let aside = f.aside.map { containerDir + "/" + $0 }
            if current == f.patched, let a = aside, FileIO.exists(a),
               (try? SHA256Hasher.hash(fileAt: a))?.0.hex == f.original {
                try withWritableParent(host) {
                    if rename(a, host) != 0 { throw RuntimeError.io("rename", host, errno) }
                }
                r.restored += 1
                continue
            }
            // The original is gone (a clone, a copied repository) or the file was replaced since:
            // set the interpreter and rpath back on a new copy, if it still points to the old place.
            if current != f.patched {
                let now = ElfFile.read(host)
                let old = record.root + "/"
                guard now?.interpreter?.hasPrefix(old) == true || (now?.rpath ?? now?.runpath ?? "").contains(old) else {
                    r.changed += 1
                    continue
                }
            }
            var opts: [String] = []
            if let i = f.interpreter { opts += ["--set-interpreter", i] }
            if let rp = f.rpath { opts += ["--force-rpath", "--set-rpath", rp] }
            else if let rp = f.runpath { opts += ["--set-rpath", rp] }
            else { opts += ["--remove-rpath"] }
            let temp = try copyBeside(host, mode: (st.st_mode & 0o7777) | 0o200, copier: copier, tag: n)
            if let why = run(opts + [temp]) {
                _ = unlink(temp)
                notes.append("\(f.path) could not be set back: patchelf failed: \(why)")
                continue
            }
            _ = chmod(temp, st.st_mode & 0o7777)
            try withWritableParent(host) {
                if rename(temp, host) != 0 { let e = errno; _ = unlink(temp); throw RuntimeError.io("rename", host, e) }
            }
            if current == f.patched { r.reverted += 1 } else {
                r.changed += 1
                notes.append("\(f.path) was changed inside the container after patching: kept, its interpreter and rpath set back")
            }
        }
        removeRecord()
        return (r, notes)
    }
}
