// The credentials keystore (`keystore` key, UDOCKER_KEYSTORE): udocker 1.3's JSON file mapping a
// registry URL to {"auth": base64("user:password"), "email": ""}, kept private (mode 0600, owner only).
#if canImport(Glibc)
import Glibc
#endif
import CAS
import Foundation
import Registry

/// What went wrong with the keystore; every message says what to do. No message holds a secret.
public enum KeystoreError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file (or its directory) can be read or changed by other users.
    case tooOpen(path: String, mode: UInt32)
    case notOwner(path: String)
    case notAFile(String)
    /// The keystore is a symbolic link: writing would replace the link and blank the file it names.
    case symlink(String)
    /// The keystore's directory can be written by others, who could swap the file under udocker.
    case openDirectory(path: String, directory: String, mode: UInt32)
    case unreadable(path: String, reason: String)
    case io(String, String, Int32)

    public var description: String {
        switch self {
        case .tooOpen(let path, let mode):
            return "keystore \(path) has mode \(String(format: "%04o", mode)) and is accessible to group or others: "
                + "it holds passwords, so udocker will not use it; run 'chmod 600 \(path)' (and change any password stored in it if others may have read it)"
        case .notOwner(let path):
            return "keystore \(path) (or its directory) belongs to another user: udocker only uses a keystore you own; remove it or set UDOCKER_KEYSTORE to a file of yours"
        case .notAFile(let path):
            return "keystore \(path) is not a regular file: remove it, or set UDOCKER_KEYSTORE to another path"
        case .symlink(let path):
            return "keystore \(path) is a symbolic link: udocker will not write through it (that would replace the link and blank the file it names); "
                + "set UDOCKER_KEYSTORE (or the keystore key) to the real file's path, or replace the link with a regular file of mode 0600"
        case .openDirectory(let path, let directory, let mode):
            return "keystore \(path) is in \(directory), which has mode \(String(format: "%04o", mode)) and can be written by group or others "
                + "(they could replace the keystore): run 'chmod go-w \(directory)', or set UDOCKER_KEYSTORE to a file in a private directory"
        case .unreadable(let path, let reason):
            return "keystore \(path) cannot be read (\(reason)): fix it, or remove it and run 'udocker login' again"
        case .io(let op, let path, let err):
            return "\(op) \(path): \(String(cString: strerror(err))) (errno \(err)): check the permissions of that directory, or set UDOCKER_KEYSTORE"
        }
    }
}

/// The keystore file. Every call reads the file afresh; changes are written to a temp file of mode 0600
/// and renamed over it, under a lock, so the file is never briefly readable by others, never half
/// written, and two logins at once do not lose each other's entry.
public struct Keystore: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// The keystore named by the configuration (`keystore` key or UDOCKER_KEYSTORE; relative to homedir).
    public init(configuration: Configuration) {
        self.init(path: configuration.keystorePath)
    }

    /// The key udocker 1.3 stores credentials under: the registry URL, e.g. "https://registry-1.docker.io".
    public static func key(for endpoint: RegistryEndpoint) -> String { endpoint.baseURL }

    /// The credentials stored for `registryURL` (any form RegistryEndpoint accepts: "https://host:port",
    /// "host:port", Docker Hub's aliases), or nil. An entry written by udocker 1.3 under another spelling
    /// of the same registry (trailing slash, http/https, "/v1") is found too.
    public func credentials(for registryURL: String) throws -> Credentials? {
        try credentials(for: try RegistryEndpoint(url: registryURL))
    }

    public func credentials(for endpoint: RegistryEndpoint) throws -> Credentials? {
        let all = try readAll()
        let exact = Keystore.key(for: endpoint)
        let keys = [exact] + all.keys.filter { $0 != exact && Keystore.sameRegistry($0, endpoint) }.sorted()
        for key in keys {
            guard let entry = all[key] as? [String: Any], let auth = entry["auth"] as? String,
                  let c = Keystore.decode(auth) else { continue }
            return c
        }
        return nil
    }

    /// All credentials, keyed by registry host[:port] as `Authenticator` wants them.
    public func allCredentials() throws -> [String: Credentials] {
        var out: [String: Credentials] = [:]
        for (key, value) in try readAll() {
            guard let endpoint = try? RegistryEndpoint(url: key), let entry = value as? [String: Any],
                  let auth = entry["auth"] as? String, let c = Keystore.decode(auth) else { continue }
            if key == Keystore.key(for: endpoint) || out[endpoint.host] == nil { out[endpoint.host] = c }
        }
        return out
    }

    /// Stores `credentials` for `endpoint`, replacing any entry for the same registry.
    public func store(_ credentials: Credentials, for endpoint: RegistryEndpoint) throws {
        try update { all in
            for key in all.keys where Keystore.sameRegistry(key, endpoint) { all[key] = nil }
            all[Keystore.key(for: endpoint)] = ["auth": Keystore.encode(credentials), "email": ""]
            return true
        }
    }

    /// Removes the entries for `endpoint`; returns whether there was one.
    @discardableResult
    public func delete(for endpoint: RegistryEndpoint) throws -> Bool {
        var found = false
        try update { all in
            for key in all.keys where Keystore.sameRegistry(key, endpoint) {
                all[key] = nil
                found = true
            }
            return found
        }
        return found
    }

    /// Removes every credential: the file's content is overwritten, then the file is removed.
    /// Returns whether there was a keystore.
    @discardableResult
    public func deleteAll() throws -> Bool {
        try withLock {
            guard let fd = try openChecked(flags: O_RDWR) else { return false }
            shred(fd)
            _ = close(fd)
            if unlink(path) != 0 && errno != ENOENT { throw KeystoreError.io("remove", path, errno) }
            try? FileIO.fsyncDirectory(FileIO.parent(of: path))
            return true
        }
    }

    // MARK: File handling

    /// Entries of the file ({} when it does not exist). Refuses a file others could read.
    func readAll() throws -> [String: Any] {
        guard let fd = try openChecked(flags: O_RDONLY) else { return [:] }
        defer { _ = close(fd) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KeystoreError.io("read", path, errno)
            }
            if n == 0 { break }
            bytes += buf[0..<n]
        }
        // udocker 1.3 blanks a keystore with spaces before rewriting it: treat blank as empty.
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d || $0 == 0 }) { return [:] }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let dict = object as? [String: Any] else {
            throw KeystoreError.unreadable(path: path, reason: "not a JSON object")
        }
        return dict
    }

    /// Opens the keystore and checks, on the open file, that it is a regular file of ours that no one
    /// else can access. nil when it does not exist.
    private func openChecked(flags: Int32) throws -> Int32? {
        // O_NOFOLLOW: a link's target is some other file of the user's, which a rename would orphan.
        let fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW)
        if fd < 0 {
            // No keystore is no credentials, whatever its directory (udocker 1.3 makes ~/.udocker 0775
            // under umask 002): only a keystore that exists, or is about to be written, is refused there.
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw KeystoreError.symlink(path) }
            throw KeystoreError.io("open", path, errno)
        }
        do { try checkDirectory() } catch {
            _ = close(fd)
            throw error
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            _ = close(fd)
            throw KeystoreError.io("stat", path, e)
        }
        if (st.st_mode & S_IFMT) != S_IFREG { _ = close(fd); throw KeystoreError.notAFile(path) }
        if st.st_uid != geteuid() { _ = close(fd); throw KeystoreError.notOwner(path: path) }
        if (st.st_mode & 0o077) != 0 { _ = close(fd); throw KeystoreError.tooOpen(path: path, mode: UInt32(st.st_mode & 0o7777)) }
        return fd
    }

    /// Refuses a keystore whose directory others can write: they could rename their own file over it
    /// between our checks and our use. A missing directory is fine (it is made private when written).
    private func checkDirectory() throws {
        let dir = FileIO.parent(of: path)
        var st = stat()
        if stat(dir, &st) != 0 {
            if errno == ENOENT { return }
            throw KeystoreError.io("stat", dir, errno)
        }
        if st.st_uid != geteuid() { throw KeystoreError.notOwner(path: path) }
        if (st.st_mode & 0o022) != 0 {
            throw KeystoreError.openDirectory(path: path, directory: dir, mode: UInt32(st.st_mode & 0o7777))
        }
    }

    /// Read, change and (when `change` says it changed something) write the entries, holding the lock.
    private func update(_ change: (inout [String: Any]) throws -> Bool) throws {
        try withLock {
            var all = try readAll()
            if try change(&all) { try write(all) }
        }
    }

    private func withLock<T>(_ body: () throws -> T) throws -> T {
        let dir = FileIO.parent(of: path)
        var st = stat()
        if stat(dir, &st) != 0 {
            guard errno == ENOENT else { throw KeystoreError.io("stat", dir, errno) }
            // The keystore's directory is normally $HOME/.udocker; made private like it.
            do { try FileIO.mkdirs(dir, mode: 0o700) } catch { throw KeystoreError.io("mkdir", dir, errno) }
        } else {
            try checkDirectory()
        }
        let lock: FileLock
        do { lock = try FileLock(path: path + ".lock") } catch { throw KeystoreError.unreadable(path: path, reason: "\(error)") }
        defer { lock.unlock() }
        return try body()
    }

    /// Writes `all` to a new file of mode 0600 and renames it over the keystore; the old file's content
    /// is then blanked (other names for it, e.g. a backup hardlink, do not keep the secrets).
    private func write(_ all: [String: Any]) throws {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: all, options: [.sortedKeys, .withoutEscapingSlashes]) } catch {
            throw KeystoreError.unreadable(path: path, reason: "cannot encode: \(error)")
        }
        let dir = FileIO.parent(of: path)
        let tmp = "\(dir)/.\(FileIO.basename(of: path)).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        // O_EXCL with mode 0600: the file is private from its creation; the umask can only remove bits.
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd < 0 { throw KeystoreError.io("create", tmp, errno) }
        do {
            if fchmod(fd, 0o600) != 0 { throw KeystoreError.io("chmod", tmp, errno) }
            try data.withUnsafeBytes { b in try FileIO.writeAll(fd, b, path: tmp) }
            try FileIO.fsync(fd, path: tmp)
        } catch {
            _ = close(fd)
            _ = unlink(tmp)
            throw error is KeystoreError ? error : KeystoreError.unreadable(path: tmp, reason: "\(error)")
        }
        _ = close(fd)
        let old = try openChecked(flags: O_RDWR)
        defer { if let old { _ = close(old) } }
        if rename(tmp, path) != 0 {
            let e = errno
            _ = unlink(tmp)
            throw KeystoreError.io("rename", path, e)
        }
        try? FileIO.fsyncDirectory(dir)
        if let old { shred(old) }
    }

    /// Overwrites a file's content with spaces (as udocker 1.3 does) before it is dropped.
    private func shred(_ fd: Int32) {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return }
        let blanks = [UInt8](repeating: 0x20, count: Int(st.st_size))
        if lseek(fd, 0, SEEK_SET) == 0 {
            _ = try? blanks.withUnsafeBytes { b in try FileIO.writeAll(fd, b, path: path) }
            _ = Glibc.fsync(fd)
        }
    }

    // MARK: Entries

    static func encode(_ c: Credentials) -> String {
        Data("\(c.username):\(c.password)".utf8).base64EncodedString()
    }

    static func decode(_ auth: String) -> Credentials? {
        guard let data = Data(base64Encoded: auth.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { return nil }
        return Credentials(username: String(text[..<colon]), password: String(text[text.index(after: colon)...]))
    }

    /// Whether a keystore key (a URL as udocker wrote it) names `endpoint`'s registry.
    static func sameRegistry(_ key: String, _ endpoint: RegistryEndpoint) -> Bool {
        guard let e = try? RegistryEndpoint(url: key) else { return false }
        return e.host == endpoint.host
    }
}
