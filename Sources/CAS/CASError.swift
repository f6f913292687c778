// The one error type of the CAS module; every message says what went wrong and what the user can do.
#if canImport(Glibc)
import Glibc
#endif

public enum CASError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidDigest(String)
    case digestMismatch(expected: Digest, actual: Digest)
    case sizeMismatch(expected: UInt64, actual: UInt64, digest: Digest)
    case blobMissing(Digest)
    case layerMissing(Digest)
    case io(String, String, Int32)
    case index(String)
    case notAStore(String)
    case unsupportedFormat(String, Int)
    case badLayer(String)
    case locked(String)
    case internalFailure(String)
    case userNamespace(String)
    /// A group store that cannot be used or made (not a member, wrong permissions): the whole sentence.
    case groupStore(String)
    /// A file of a layer's shared tree that no longer matches layer.json (its owner's run wrote it).
    case sharedLayerChanged(Digest, String)
    /// The store's filesystem refuses file locks (ENOLCK, ENOSYS): what was refused because of it.
    case locksUnsupported(path: String, refused: String)

    public var description: String {
        switch self {
        case .invalidDigest(let s):
            return "invalid digest '\(s)': expected sha256: followed by 64 lowercase hex digits"
        case .digestMismatch(let expected, let actual):
            return "content does not match its digest: expected \(expected), got \(actual); nothing was stored. The source is corrupt or was changed: fetch it again"
        case .sizeMismatch(let expected, let actual, let d):
            return "size of \(d) does not match: expected \(expected) bytes, got \(actual); nothing was stored"
        case .blobMissing(let d):
            return "blob \(d) is not in the store: pull the image again, or run 'udocker store verify --repair'"
        case .layerMissing(let d):
            return "unpacked layer \(d) is not in the store: pull the image again"
        case .io(let op, let path, let err):
            return "\(op) \(path): \(String(cString: strerror(err))) (errno \(err))" + CASError.hint(err)
        case .index(let s):
            return "store index: \(s); the index is a cache, 'udocker store verify --repair' rebuilds it from the files"
        case .notAStore(let p):
            return "\(p) is not a udocker store (no store.json): create one with 'udocker mkrepo'"
        case .unsupportedFormat(let p, let v):
            return "store \(p) has format version \(v), which this udocker does not know: upgrade udocker"
        case .badLayer(let s):
            return "layer cannot be unpacked: \(s)"
        case .locked(let s):
            return "\(s) is locked by another udocker process: wait for it to finish and try again"
        case .userNamespace(let s):
            return "cannot protect the store's files through a user namespace: \(s). Check that newuidmap and newgidmap are setuid root and that /etc/subuid and /etc/subgid give this user a range, or set UDOCKER_STORE_PROTECTION=detect"
        case .groupStore(let s):
            return s
        case .sharedLayerChanged(let d, let path):
            return "/\(path) of unpacked layer \(d) was changed in place in the store (a run of the member who unpacked it wrote it), so it is not copied for your containers: that member (or anyone, with 'udocker store verify --repair') restores it"
        case .locksUnsupported(let path, let refused):
            return "the filesystem of \(path) does not support file locks (as Lustre mounted without 'flock', or an NFS server without a lock manager): \(refused), because without locks it could remove what a pull on another host is storing. Mount the filesystem with lock support (Lustre: -o flock; NFS: run rpc.statd/lockd), or run it on a host where locks work"
        case .internalFailure(let s):
            return "internal error: \(s); please report it"
        }
    }

    private static func hint(_ err: Int32) -> String {
        switch err {
        case ENOSPC: return ": the disk is full, free space or run 'udocker store gc'"
        case EACCES, EPERM: return ": check the permissions of the repository directory"
        case EROFS: return ": the filesystem is read-only"
        case EDQUOT: return ": disk quota exceeded"
        default: return ""
        }
    }
}
