// Recognises network and cluster filesystems by their statfs magic number. On those, LMDB must not
// be opened read-write (its lock table is shared memory, not coherent across hosts).
#if canImport(Glibc)
import Glibc
#endif
import CShim

public enum FilesystemKind {
    /// statfs f_type magic numbers of filesystems whose content other hosts can change, with a name.
    public static let networkMagics: [Int64: String] = [
        0x6969: "nfs",
        0x517B: "smb",
        0xFF53_4D42: "cifs",
        0xFE53_4D42: "smb2",
        0x0BD0_0BD0: "lustre",
        0x4750_4653: "gpfs",
        0x6573_5546: "fuse",  // also glusterfs, sshfs, virtiofs, quobyte: all report FUSE
        0x00C3_6400: "ceph",
        0x5346_414F: "afs",
        0x6B41_4653: "kafs",
        0x0102_1997: "9p",
        0x564C: "ncp",
        0x7375_7245: "coda",
        0x7461_636F: "ocfs2",
        0x0116_1970: "gfs2",
        0xAAD7_AAEA: "panfs",
        0x1983_0326: "beegfs",
        0x2003_0528: "orangefs",
    ]

    /// The decision, as a pure function: is a filesystem with this statfs magic a network filesystem?
    public static func isNetwork(magic: Int64) -> Bool {
        networkMagics[magic & 0xFFFF_FFFF] != nil
    }

    /// A short name for the filesystem type, for `stats` output.
    public static func name(magic: Int64) -> String {
        if let n = networkMagics[magic & 0xFFFF_FFFF] { return n }
        switch magic & 0xFFFF_FFFF {
        case 0xEF53: return "ext4"
        case 0x5846_5342: return "xfs"
        case 0x9123_683E: return "btrfs"
        case 0x0102_1994: return "tmpfs"
        case 0x794C_7630: return "overlayfs"
        case 0x2FC1_2FC1: return "zfs"
        default: return String(format16: magic)
        }
    }

    /// The statfs magic of the filesystem holding `path`.
    public static func magic(of path: String) throws -> Int64 {
        let m = ud_statfs_type(path)
        if m == -1 { throw CASError.io("statfs", path, errno) }
        return Int64(m)
    }
}

extension String {
    fileprivate init(format16 v: Int64) {
        self = "0x" + String(UInt64(bitPattern: v) & 0xFFFF_FFFF, radix: 16)
    }
}
