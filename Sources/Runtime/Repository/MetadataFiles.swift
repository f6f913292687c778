// Small bookkeeping files of repositories and stores (repo.json, store.json, store.path,
// store registrations): create-only and atomic writes, and their parsing.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim
import Foundation

enum MetadataFiles {
    /// Runs `body`, turning the store's I/O errors into RuntimeError so callers see one error type.
    static func io<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch CASError.io(let op, let path, let err) {
            throw RuntimeError.io(op, path, err)
        }
    }

    static func mkdirs(_ path: String) throws {
        // 0777 and the user's umask decide, as udocker's os.makedirs does: a group sharing a store
        // sets umask 002 and gets group-writable directories.
        try io { try FileIO.mkdirs(path, mode: 0o777) }
    }

    /// Writes `bytes` to `path` only if `path` does not exist, atomically: a concurrent writer of the
    /// same file either loses (returns false, its content is not used) or wins, never mixes.
    /// FileIO.writeAtomically renames and would replace a file another process just created;
    /// link(2) does not, and works on NFS. Returns whether this call created the file.
    static func createOnly(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws -> Bool {
        if FileIO.exists(path) { return false }
        let dir = FileIO.parent(of: path)
        let tmp = "\(dir)/.tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(FileIO.basename(of: path))"
        try io {
            let fd = try FileIO.open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode)
            defer { _ = close(fd) }
            try bytes.withUnsafeBytes { try FileIO.writeAll(fd, $0, path: tmp) }
            try FileIO.fsync(fd, path: tmp)
        }
        defer { _ = unlink(tmp) }
        if link(tmp, path) == 0 {
            try io { try FileIO.fsyncDirectory(dir) }
            return true
        }
        let err = errno
        if err == EEXIST { return false }
        if err == EPERM || err == EOPNOTSUPP || err == ENOSYS || err == EMLINK {
            // A filesystem without hard links: rename that refuses to replace.
            if ud_rename_noreplace(AT_FDCWD, tmp, AT_FDCWD, path) == 0 {
                try io { try FileIO.fsyncDirectory(dir) }
                return true
            }
            let err2 = errno
            if err2 == EEXIST { return false }
            if err2 == EINVAL || err2 == ENOSYS {
                // Neither is available: check-then-rename, racy only against a concurrent mkrepo.
                if FileIO.exists(path) { return false }
                try io { try FileIO.writeAtomically(path, bytes, mode: mode) }
                return true
            }
            throw RuntimeError.io("rename", path, err2)
        }
        throw RuntimeError.io("link", path, err)
    }

    static func writeAtomically(_ path: String, _ text: String) throws {
        try io { try FileIO.writeAtomically(path, Array(text.utf8)) }
    }

    static func readText(_ path: String) throws -> String? {
        guard FileIO.exists(path) else { return nil }
        let bytes = try io { try FileIO.readFile(path) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads {"format":1,"id":"..."} (repo.json and store.json).
    static func readIdentity(_ path: String) throws -> (format: Int, id: String)? {
        guard let text = try readText(path) else { return nil }
        guard let object = SmallJSON.parse(Array(text.utf8)), case .object = object else {
            throw RuntimeError.badMetadata(path: path, reason: "not a JSON object")
        }
        guard let format = object["format"]?.int else {
            throw RuntimeError.badMetadata(path: path, reason: "no \"format\" number")
        }
        guard let id = object["id"]?.string, !id.isEmpty else {
            throw RuntimeError.badMetadata(path: path, reason: "no \"id\" string")
        }
        return (format, id)
    }

    static func identityJSON(id: String) -> [UInt8] {
        Array("{\"format\":1,\"id\":\"\(id)\"}".utf8)
    }

    static func newID() -> String {
        UUID().uuidString.lowercased()
    }

    /// A file holding one absolute path on its first line (store.path, store registrations).
    static func readPathFile(_ path: String) throws -> String? {
        guard let text = try readText(path) else { return nil }
        let first = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).first.map(String.init) ?? ""
        guard first.hasPrefix("/") else {
            throw RuntimeError.badMetadata(path: path, reason: "expected an absolute path, found '\(first)'")
        }
        return Paths.normalize(first)
    }
}
