// A layer holding a path longer than PATH_MAX: the pull notes it, and create, verify, rmi and gc
// keep working, with nothing left in store/tmp (it used to poison the store).
import TestSupport
import Testing
import CAS
import Foundation

// Each test ends within its time limit, whatever a server or command does (issue 13: no test without a bound).
@Suite(.timeLimit(.minutes(2))) struct LongPathTests {
    @Test func aPathLongerThanPathMaxDoesNotPoisonTheStore() throws {
        let registry = try TestRegistry()
        defer { registry.stop() }
        let work = makeTempDirectory("long-path")
        defer { try? FileIO.removeTree(work) }
        var tar = TarBuilder()
        tar.file("hello", "hi\n")
        tar.longFile(String(repeating: "deep/", count: 1000) + "file", "far down\n")   // 5004 bytes
        try tar.write(to: work + "/long.tar")
        try registry.pushImage(tar: work + "/long.tar", as: "test/long", tag: "1", work: work)

        let env = ["UDOCKER_DIR": work + "/repo", "UDOCKER_REGISTRY": registry.url]
        func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) { runUdocker(args, env: env, killAfter: 120) }
        let pull = run(["pull", "test/long:1"])
        #expect(pull.status == 0 && pull.stderr.contains("longer than 3584 bytes"), "\(pull.stderr)")
        let create = run(["create", "--name=c", "test/long:1"])
        #expect(create.status == 0, "\(create.stderr)")
        let verify = run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(run(["rm", "c"]).status == 0)
        #expect(run(["rmi", "test/long:1"]).status == 0)
        let gc = run(["store", "gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(((try? FileIO.listDirectory(work + "/repo/store/tmp")) ?? ["?"]).isEmpty)
        let again = run(["store", "verify"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
    }
}
