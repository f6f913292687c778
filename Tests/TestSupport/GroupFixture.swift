// The group-store tests' setting from scripts/setup-host.sh: a Unix group holding the test user, the
// peer (subordinate ids) and the user without subordinate ids, a project directory of that group, and
// the same directory through a FUSE mount (bindfs). The other users are reached through the test sshd.
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct GroupFixture: Sendable {
    public static let envFile = "/etc/udocker-test-group.env"

    public let group: String
    /// The group's project directory, where group stores are made.
    public let dir: String
    /// `dir` through FUSE, or nil when the setup could not mount it.
    public let fuse: String?
    /// The second member, with subordinate ids.
    public let peer: SSHPeer
    /// The third member, without subordinate ids.
    public let nosub: SSHPeer

    /// The setting, or nil on a machine without it (or when this process is not in the group).
    public static let shared: GroupFixture? = {
        guard let text = try? String(contentsOfFile: envFile, encoding: .utf8), let peer = SSHPeer.shared else { return nil }
        var v = [String: String]()
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if kv.count == 2 { v[kv[0]] = kv[1] }
        }
        guard let group = v["UDOCKER_TEST_GROUP"], let dir = v["UDOCKER_TEST_GROUP_DIR"], let nosubUser = v["UDOCKER_TEST_NOSUB_USER"],
              let gr = getgrnam(group), SharedGroup.isMember(gr.pointee.gr_gid), let pw = getpwnam(nosubUser), getuid() != pw.pointee.pw_uid,
              getuid() != getpwnam(peer.user)?.pointee.pw_uid else { return nil }
        let nosub = SSHPeer(user: nosubUser, home: String(cString: pw.pointee.pw_dir), port: peer.port, key: peer.key)
        let fuse = v["UDOCKER_TEST_GROUP_FUSE"].flatMap { $0.isEmpty ? nil : $0 }
        return GroupFixture(group: group, dir: dir, fuse: fuse, peer: peer, nosub: nosub)
    }()
}
