// Errors whose advice works when followed: a refused connection fails at once instead of after the
// retries.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ErrorAdviceTests {
    /// A repository with test/busybox:oci (a static busybox) pulled and container `name` made from it.
    func busyboxContainer(_ name: String) throws -> ImageRepo {
        let r = try ImageRepo()
        let pull = r.run(["pull", "test/busybox:oci"])
        try #require(pull.status == 0, "\(pull.stderr)")
        let create = r.run(["create", "--name=\(name)", "test/busybox:oci"])
        try #require(create.status == 0, "\(create.stderr)")
        return r
    }

    /// A PATH directory holding none of the engine tools (libfakechroot is still found on the host).
    func emptyPath(_ r: ImageRepo) throws -> String {
        let dir = r.tmp + "/emptybin"
        try FileIO.mkdirs(dir)
        return dir
    }

    @Test func aRefusedConnectionFailsAtOnce() throws {
        let r = try ImageRepo()
        let closed = "127.0.0.1:\(freePort())"
        for args in [["pull", "--registry=http://\(closed)", "test/busybox:oci"],
                     ["search", "--list-tags", "--registry=http://\(closed)", "test/busybox"]] {
            let start = Date()
            let res = r.run(args)
            let seconds = Date().timeIntervalSince(start)
            #expect(res.status == 1)
            #expect(seconds < 2, "\(args[0]) took \(seconds) s")
            #expect(res.stderr.hasPrefix("Error: cannot reach http://\(closed)/v2/") && res.stderr.contains("connection refused"),
                    "\(res.stderr)")
            #expect(!res.stderr.contains("giving up"), "\(res.stderr)")
        }
    }
}
