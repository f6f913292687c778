// Test helpers for the layer unpacker: a tar writer on libarchive (it can write the hostile entries GNU tar
// refuses to make), sandboxes with canary directories, and running host tools (gzip, sha256sum, tar).
import CArchive
import Foundation
import Testing
@testable import CAS

/// One entry for `writeTar`.
struct TarEntry {
    enum Kind {
        case file([UInt8])
        case directory
        case symlink(String)
        case hardlink(String)
        case fifo
        case charDevice(UInt32, UInt32)
        case blockDevice(UInt32, UInt32)
    }
    var path: String
    var kind: Kind
    var mode: UInt32
    var uid: Int64 = 0
    var gid: Int64 = 0
    var mtime: Int = 1_600_000_000

    static func file(_ path: String, _ text: String, mode: UInt32 = 0o644, mtime: Int = 1_600_000_000) -> TarEntry {
        TarEntry(path: path, kind: .file(Array(text.utf8)), mode: mode, mtime: mtime)
    }
    static func dir(_ path: String, mode: UInt32 = 0o755, mtime: Int = 1_600_000_000) -> TarEntry {
        TarEntry(path: path, kind: .directory, mode: mode, mtime: mtime)
    }
    static func symlink(_ path: String, _ target: String) -> TarEntry {
        TarEntry(path: path, kind: .symlink(target), mode: 0o777)
    }
    static func hardlink(_ path: String, _ target: String) -> TarEntry {
        TarEntry(path: path, kind: .hardlink(target), mode: 0o644)
    }
}

enum TarFilter { case none, gzip, zstd, xz, bzip2 }

struct ToolFailure: Error, CustomStringConvertible {
    let description: String
}

/// Writes a pax tar with libarchive, exactly as given: no path sanitising, so "../x" and "/abs" stay.
func writeTar(_ entries: [TarEntry], to path: String, filter: TarFilter = .none) throws {
    guard let a = archive_write_new() else { throw ToolFailure(description: "archive_write_new") }
    defer { archive_write_free(a) }
    archive_write_set_format_pax_restricted(a)
    switch filter {
    case .none: break
    case .gzip: archive_write_add_filter_gzip(a)
    case .zstd: archive_write_add_filter_zstd(a)
    case .xz: archive_write_add_filter_xz(a)
    case .bzip2: archive_write_add_filter_bzip2(a)
    }
    func check(_ rc: Int32, _ what: String) throws {
        if rc != ARCHIVE_OK && rc != ARCHIVE_WARN {
            throw ToolFailure(description: "\(what): \(String(cString: archive_error_string(a)))")
        }
    }
    try check(archive_write_open_filename(a, path), "open \(path)")
    for t in entries {
        guard let e = archive_entry_new() else { throw ToolFailure(description: "archive_entry_new") }
        defer { archive_entry_free(e) }
        archive_entry_set_pathname(e, t.path)
        archive_entry_set_perm(e, mode_t(t.mode))
        archive_entry_set_uid(e, t.uid)
        archive_entry_set_gid(e, t.gid)
        archive_entry_set_mtime(e, t.mtime, 0)
        var data: [UInt8] = []
        switch t.kind {
        case .file(let bytes):
            archive_entry_set_filetype(e, Glibc.S_IFREG)
            archive_entry_set_size(e, Int64(bytes.count))
            data = bytes
        case .directory:
            archive_entry_set_filetype(e, Glibc.S_IFDIR)
        case .symlink(let target):
            archive_entry_set_filetype(e, Glibc.S_IFLNK)
            archive_entry_set_symlink(e, target)
        case .hardlink(let target):
            archive_entry_set_filetype(e, Glibc.S_IFREG)
            archive_entry_set_hardlink(e, target)
            archive_entry_set_size(e, 0)
        case .fifo:
            archive_entry_set_filetype(e, Glibc.S_IFIFO)
        case .charDevice(let major, let minor):
            archive_entry_set_filetype(e, Glibc.S_IFCHR)
            archive_entry_set_rdevmajor(e, dev_t(major))
            archive_entry_set_rdevminor(e, dev_t(minor))
        case .blockDevice(let major, let minor):
            archive_entry_set_filetype(e, Glibc.S_IFBLK)
            archive_entry_set_rdevmajor(e, dev_t(major))
            archive_entry_set_rdevminor(e, dev_t(minor))
        }
        try check(archive_write_header(a, e), "header \(t.path)")
        if !data.isEmpty {
            let n = data.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            if n != data.count { throw ToolFailure(description: "data \(t.path)") }
        }
    }
    try check(archive_write_close(a), "close \(path)")
}

/// A unique directory under /tmp, removed (read-only store files included) when the test ends.
final class Sandbox {
    let base: String

    init(_ label: String = "unpack") throws {
        base = "/tmp/udocker-test-\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileIO.mkdirs(base, mode: 0o755)
    }

    deinit { try? FileIO.removeTree(base) }

    func path(_ name: String) -> String { base + "/" + name }

    /// A fresh empty directory to unpack into.
    func emptyDirectory(_ name: String) throws -> String {
        let p = path(name)
        try FileIO.mkdirs(p, mode: 0o755)
        return p
    }

    func write(_ name: String, _ bytes: [UInt8]) throws {
        try FileIO.writeAtomically(path(name), bytes)
    }
}

/// Runs a host program (no shell), returning stdout; throws on a non-zero exit.
@discardableResult
func run(_ tool: String, _ args: [String], stdinFile: String? = nil, stdoutFile: String? = nil,
         cwd: String? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let stdinFile { p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdinFile)) }
    let pipe = Pipe()
    if let stdoutFile {
        guard FileManager.default.createFile(atPath: stdoutFile, contents: nil) else {
            throw ToolFailure(description: "cannot create \(stdoutFile)")
        }
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutFile))
    } else {
        p.standardOutput = pipe
    }
    try p.run()
    let out = stdoutFile == nil ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
    p.waitUntilExit()
    if p.terminationStatus != 0 {
        throw ToolFailure(description: "\(tool) \(args.joined(separator: " ")) exited with \(p.terminationStatus)")
    }
    return String(decoding: out, as: UTF8.self)
}

/// sha256sum's verdict on a file, as a Digest.
func sha256sum(_ path: String) throws -> Digest {
    let out = try run("/usr/bin/sha256sum", [path])
    return try Digest(parsing: String(out.prefix(64)), allowBare: true)
}

func unpack(_ layer: String, into root: String) throws -> LayerManifest {
    let fd = open(layer, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw CASError.io("open", layer, errno) }
    defer { close(fd) }
    return try LayerUnpacker().unpack(fd: fd, sourceName: layer, into: root)
}

func lstatOf(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}

func fileText(_ path: String) -> String? {
    guard let bytes = try? FileIO.readFile(path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

func sha256(_ text: String) throws -> Digest {
    let h = try SHA256Hasher()
    h.update(Array(text.utf8))
    return h.finish()
}

extension LayerManifest {
    func entry(_ path: String) -> LayerEntry? { entries.first { $0.path == path } }
    func skipReason(_ path: String) -> String? { skipped.first { $0.path == path }?.reason }
}

/// A sparse file `src/sparse` of `size` bytes in `box`, holding "middle" at offset `middle` and "tail"
/// at its end, holes elsewhere, archived by GNU tar as sparse in `sparse.tar`. Returns the file's path.
func writeSparseTar(in box: Sandbox, size: Int, middle: Int) throws -> String {
    try FileIO.mkdirs(box.path("src"))
    let sparse = box.path("src/sparse")
    let fd = open(sparse, O_WRONLY | O_CREAT, 0o644)
    try #require(fd >= 0)
    _ = pwrite(fd, "middle", 6, off_t(middle))
    _ = pwrite(fd, "tail", 4, off_t(size - 4))
    close(fd)
    try run("/usr/bin/tar", ["--sparse", "--format=pax", "-cf", box.path("sparse.tar"), "-C", box.path("src"), "sparse"])
    return sparse
}
