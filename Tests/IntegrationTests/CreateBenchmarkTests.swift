// Create/clone timings for a 20,000-small-file image through the binary (run with UDOCKER_BENCH=1;
// skipped otherwise). Prints the best of three runs per mode; benchmarks/ compares them with udocker 1.3.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CreateBenchmarkTests {
    static let enabled = ProcessInfo.processInfo.environment["UDOCKER_BENCH"] != nil

    /// A tar of 20,000 small files: 16,000 under /usr, 2,000 under /etc, 2,000 under /var.
    static func makeTar(_ dir: String) throws -> String {
        let root = dir + "/root"
        for (tree, count) in [("usr/share/data", 14000), ("usr/lib/mod", 2000), ("etc/conf", 2000), ("var/lib/db", 2000)] {
            for i in 0..<count {
                let sub = "\(root)/\(tree)/d\(i / 100)"
                if i % 100 == 0 { try FileIO.mkdirs(sub) }
                let text = String(repeating: "line \(i) of \(tree)\n", count: 8)
                let fd = open("\(sub)/f\(i)", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                _ = text.withCString { write(fd, $0, strlen($0)) }
                close(fd)
            }
        }
        let tar = dir + "/layer.tar"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/tar")
        p.arguments = ["-C", root, "-cf", tar, "."]
        try p.run()
        p.waitUntilExit()
        return tar
    }

    static func seconds(_ body: () -> Void) -> Double {
        var a = timespec(), b = timespec()
        clock_gettime(CLOCK_MONOTONIC, &a)
        body()
        clock_gettime(CLOCK_MONOTONIC, &b)
        return Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) / 1e9
    }

    @Test(.enabled(if: enabled)) func create20000Files() throws {
        // UDOCKER_BENCH_DIR keeps the pulled repository between runs (and reuses it).
        let kept = ProcessInfo.processInfo.environment["UDOCKER_BENCH_DIR"]
        let work = kept ?? makeTempDirectory("bench")
        defer { if kept == nil { try? FileIO.removeTree(work) } }
        let env = ["UDOCKER_DIR": work + "/repo", "HOME": work]
        if !FileIO.exists(work + "/repo/repos/bench/files/20k/image.json") {
            try FileIO.mkdirs(work)
            let registry = try TestRegistry()
            defer { registry.stop() }
            let tar = try Self.makeTar(work)
            let layout = try OCILayout(dir: work + "/layout")
            layout.tag(try layout.addImage(tar: tar, compression: "gzip", arch: "amd64"), as: "bench")
            try layout.writeIndex()
            try registry.push(layout: work + "/layout", tag: "bench", to: "bench/files", destTag: "20k")
            let pull = runUdocker(["pull", "bench/files:20k"], env: env.merging(["UDOCKER_REGISTRY": registry.url]) { $1 })
            try #require(pull.status == 0, "\(pull.stderr)")
        }
        var lines: [String] = []
        for mode in ["link", "auto", "copy"] {
            var best = Double.infinity
            var id = ""
            for _ in 0..<3 {
                var r: (status: Int32, stdout: String, stderr: String) = (0, "", "")
                best = min(best, Self.seconds { r = runUdocker(["create", "--materialize=\(mode)", "bench/files:20k"], env: env) })
                #expect(r.status == 0, "\(r.stderr)")
                id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var cloneBest = Double.infinity
            for _ in 0..<3 {
                cloneBest = min(cloneBest, Self.seconds { _ = runUdocker(["clone", id], env: env) })
            }
            for c in try FileIO.listDirectory(work + "/repo/containers") { _ = runUdocker(["rm", c], env: env) }
            lines.append("create --materialize=\(mode): \(String(format: "%.3f", best)) s; clone: \(String(format: "%.3f", cloneBest)) s")
        }
        print(lines.joined(separator: "\n"))
    }
}
