// Helpers for the store tests: a throw-away store under /tmp, content helpers, a hand-built
// unpacked layer, and running a program with posix_spawn.
import Foundation
import Testing
@testable import CAS
#if canImport(Glibc)
import Glibc
#endif

/// A unique directory under /tmp, removed (read-only trees included) when dropped.
final class TempDir {
    let path: String
    init(_ label: String = "cas") throws {
        path = "/tmp/udocker-test-\(label)-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try FileIO.mkdirs(path)
    }
    deinit { try? FileIO.removeTree(path) }
}

func sha(_ bytes: [UInt8]) throws -> Digest {
    let h = try SHA256Hasher()
    h.update(bytes)
    return h.finish()
}

func randomBytes(_ n: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: n)
    let fd = open("/dev/urandom", O_RDONLY)
    defer { _ = close(fd) }
    var off = 0
    while off < n {
        let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + off, n - off) }
        if r <= 0 { break }
        off += r
    }
    return out
}

func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    let fd = try FileIO.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    defer { _ = close(fd) }
    try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: path) }
}

func fileMode(_ path: String) -> mode_t {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : 0
}

/// Entries of a directory, or [] when it does not exist.
func list(_ path: String) -> [String] { (try? FileIO.listDirectory(path)) ?? [] }

/// All blob files (not sidecars) under blobs/sha256.
func blobFiles(_ store: Store) -> [String] {
    list(store.layout.blobsDir).flatMap { p in list(store.layout.blobsDir + "/" + p).filter { !$0.contains(".") } }.sorted()
}

/// Overwrites one byte of a read-only store file the way a careless user would: chmod u+w first.
func corruptByte(_ path: String, at offset: off_t = 0) throws {
    let old = fileMode(path)
    _ = chmod(path, old | 0o200)
    let fd = try FileIO.open(path, O_WRONLY)
    defer { _ = close(fd) }
    var st = stat()
    _ = fstat(fd, &st)
    var b: UInt8 = 0
    let rfd = try FileIO.open(path, O_RDONLY)
    _ = pread(rfd, &b, 1, offset)
    _ = close(rfd)
    b ^= 0xFF
    #expect(pwrite(fd, &b, 1, offset) == 1)
}

/// Builds an unpacked layer by hand (what LayerUnpacker would produce) and adopts it into the store.
@discardableResult
func installHandmadeLayer(_ store: Store, blob: Digest, files: [String: [UInt8]], diffSeed: [UInt8]? = nil) throws -> LayerManifest {
    let tmp = store.layout.tmpDir + "/" + TempName.make("layer")
    try FileIO.mkdirs(tmp + "/root")
    var entries = [LayerEntry]()
    var dirs = Set<String>()
    for (path, content) in files.sorted(by: { $0.key < $1.key }) {
        let parent = FileIO.parent(of: path)
        if parent != "." && !dirs.contains(parent) {
            try FileIO.mkdirs(tmp + "/root/" + parent)
            dirs.insert(parent)
            entries.append(LayerEntry(path: parent, kind: .directory, mode: 0o755))
        }
        // Read-only, as LayerUnpacker writes store files: (mode & 0o555) | 0o400.
        try writeFile(tmp + "/root/" + path, content, mode: 0o555)
        // The image's mtime, as the unpacker sets it (verify compares it).
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, tmp + "/root/" + path, &times, 0)
        entries.append(LayerEntry(path: path, kind: .file, mode: 0o755, mtime: 1_600_000_000, size: UInt64(content.count),
                                  digest: try sha(content)))
    }
    let diffID = try sha(diffSeed ?? Array(files.keys.sorted().joined(separator: ",").utf8) + blob.rawBytes)
    let m = LayerManifest(diffID: diffID, blobs: [blob], compression: "none", entries: entries,
                          whiteouts: [], opaqueDirs: [], skipped: [])
    return try store.adoptLayer(tempDir: tmp, manifest: m)
}

/// Runs a program (no shell) and returns its exit status and pid.
@discardableResult
func spawn(_ argv: [String]) throws -> (status: Int32, pid: pid_t) {
    var pid: pid_t = 0
    let cargs = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    let rc = posix_spawn(&pid, argv[0], nil, nil, cargs, environ)
    if rc != 0 { throw CASError.io("posix_spawn", argv[0], rc) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return ((status >> 8) & 0xFF, pid)
}

/// Whether LayerUnpacker is implemented in this build (it is written in parallel by another helper).
let layerUnpackerAvailable: Bool = {
    guard let dir = try? TempDir("probe") else { return false }
    let fd = open("/dev/null", O_RDONLY)
    defer { _ = close(fd) }
    do {
        _ = try LayerUnpacker().unpack(fd: fd, sourceName: "probe", into: dir.path)
        return true
    } catch CASError.internalFailure(let m) where m.contains("is being written") {
        return false
    } catch {
        return true
    }
}()
