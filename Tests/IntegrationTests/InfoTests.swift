// `udocker info` through the binary: engines with their origin and version, host facts, usable
// modes with the reason for each unusable one, the default mode, the repository paths; --json.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite("Info") struct InfoTests {
    func section(_ text: String, _ title: String) -> [String] {
        let lines = text.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(where: { $0.hasPrefix(title) }) else { return [] }
        return Array(lines[(start + 1)...].prefix { $0.hasPrefix("  ") })
    }

    func line(_ lines: [String], _ prefix: String) -> String? {
        lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(prefix) }
    }

    @Test func nothingInstalledSaysWhyEachModeCannotRun() throws {
        let tmp = makeTempDirectory("info-none")
        defer { try? FileIO.removeTree(tmp) }
        let empty = tmp + "/emptybin"
        try FileIO.mkdirs(empty)
        let r = runUdocker(["info"], env: ["UDOCKER_DIR": tmp + "/repo", "PATH": empty])
        #expect(r.status == 0, "\(r.stderr)")
        let engines = section(r.stdout, "Engines:")
        for name in ["proot", "runc", "crun", "patchelf", "apptainer/singularity"] {
            #expect(line(engines, name + " ")?.hasSuffix("not found") == true, "\(name): \(engines)")
        }
        let modes = section(r.stdout, "Execution modes")
        #expect(line(modes, "P1 ") == "  P1  unusable: proot not found", "\(modes)")
        #expect(line(modes, "R1 ") == "  R1  unusable: neither runc nor crun found")
        #expect(line(modes, "S1 ") == "  S1  unusable: neither apptainer nor singularity found")
        #expect(modes.count == 10)
        #expect(r.stdout.contains("\nDefault mode: P1 (unusable here: proot not found)\n"), "\(r.stdout)")

        let host = section(r.stdout, "Host:")
        let kernel = String(decoding: try FileIO.readFile("/proc/sys/kernel/osrelease"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(host.contains("  kernel: " + kernel), "\(host)")
        #if arch(x86_64)
        #expect(host.contains("  architecture: x86_64"))
        #endif
        #expect(host.contains { ["  cgroup layout: unified", "  cgroup layout: hybrid", "  cgroup layout: legacy", "  cgroup layout: none"].contains($0) })
        #expect(host.contains { $0 == "  user namespaces: available" || $0.hasPrefix("  user namespaces: unavailable: ") })

        let repo = section(r.stdout, "Repository:")
        #expect(repo.contains("  topdir: \(tmp)/repo"))
        #expect(repo.contains("  containers: \(tmp)/repo/containers"))
        #expect(repo.contains("  store: \(tmp)/repo/store"))
    }

    @Test func enginesShowOriginAndVersionAndMakeModesUsable() throws {
        let tmp = makeTempDirectory("info-tools")
        defer { try? FileIO.removeTree(tmp) }
        let bin = tmp + "/hostbin"
        try FileIO.mkdirs(bin)
        try FileManager.default.createSymbolicLink(atPath: bin + "/proot", withDestinationPath: "/usr/bin/proot")
        try writeExecutable(bin + "/apptainer", "#!/bin/sh\necho 'apptainer version 1.3.0-standin'\n")
        try writeExecutable(tmp + "/myrunc", "#!/bin/sh\necho 'runc version 9.8.7'\necho 'commit: x'\n")
        let env = ["UDOCKER_DIR": tmp + "/repo", "PATH": bin, "UDOCKER_USE_RUNC_EXECUTABLE": tmp + "/myrunc",
                   "UDOCKER_DEFAULT_EXECUTION_MODE": "S1"]
        let r = runUdocker(["info"], env: env)
        #expect(r.status == 0, "\(r.stderr)")
        let engines = section(r.stdout, "Engines:")
        // PRoot draws its name; the version is the number at the end of the drawing.
        let proot = try #require(line(engines, "proot "), "\(engines)")
        #expect(proot.contains(bin + "/proot (host) version "), "\(proot)")
        #expect(proot.split(separator: " ").last?.first?.isNumber == true, "\(proot)")
        #expect(line(engines, "apptainer ")?.hasSuffix(bin + "/apptainer (host) version 1.3.0-standin") == true, "\(engines)")
        #expect(line(engines, "runc ")?.hasSuffix(tmp + "/myrunc (setting) version 9.8.7") == true, "\(engines)")
        let modes = section(r.stdout, "Execution modes")
        #expect(line(modes, "P1 ")?.hasPrefix("  P1  usable: ") == true)
        #expect(line(modes, "S1 ")?.hasPrefix("  S1  usable: ") == true, "\(modes)")
        #expect(r.stdout.contains("\nDefault mode: S1\n"), "\(r.stdout)")
        #expect(r.stdout.contains("Execution modes (usable: P1 P2"), "\(r.stdout)")

        // A program in the repository's bin/ comes before PATH; a setting naming a missing file is an error.
        try FileIO.mkdirs(tmp + "/repo/bin")
        try writeExecutable(tmp + "/repo/bin/apptainer", "#!/bin/sh\necho 'apptainer version 2.0'\n")
        let r2 = runUdocker(["info"], env: env.merging(["UDOCKER_USE_PROOT_EXECUTABLE": tmp + "/missing-proot"]) { $1 })
        #expect(r2.status == 0, "\(r2.stderr)")
        let engines2 = section(r2.stdout, "Engines:")
        #expect(line(engines2, "apptainer ")?.hasSuffix(tmp + "/repo/bin/apptainer (repository) version 2.0") == true, "\(engines2)")
        #expect(line(engines2, "proot ")?.contains("error: proot not found: UDOCKER_USE_PROOT_EXECUTABLE") == true, "\(engines2)")
        #expect(line(section(r2.stdout, "Execution modes"), "P1 ") == "  P1  unusable: proot not found")
    }

    @Test func jsonHasTheSameFacts() throws {
        let tmp = makeTempDirectory("info-json")
        defer { try? FileIO.removeTree(tmp) }
        let bin = tmp + "/hostbin"
        try FileIO.mkdirs(bin)
        try writeExecutable(bin + "/apptainer", "#!/bin/sh\necho 'apptainer version 1.3.0-standin'\n")
        // The repository does not exist yet: it is created silently, the output stays JSON.
        let r = runUdocker(["info", "--json"], env: ["UDOCKER_DIR": tmp + "/repo", "PATH": bin])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(obj["default_mode"] as? String == "P1")
        let engines = try #require(obj["engines"] as? [[String: Any]])
        let app = try #require(engines.first { $0["tool"] as? String == "singularity" })
        #expect(app["found"] as? Bool == true && app["origin"] as? String == "host")
        #expect(app["path"] as? String == bin + "/apptainer" && app["version"] as? String == "1.3.0-standin")
        let proot = try #require(engines.first { $0["tool"] as? String == "proot" })
        #expect(proot["found"] as? Bool == false)
        let modes = try #require(obj["modes"] as? [[String: Any]])
        #expect(modes.count == 10)
        let p1 = try #require(modes.first { $0["mode"] as? String == "P1" })
        #expect(p1["usable"] as? Bool == false && p1["problem"] as? String == "proot not found")
        let s1 = try #require(modes.first { $0["mode"] as? String == "S1" })
        #expect(s1["usable"] as? Bool == true && s1["problem"] == nil)
        let repo = try #require(obj["repository"] as? [String: Any])
        #expect(repo["topdir"] as? String == tmp + "/repo" && repo["store"] as? String == tmp + "/repo/store")
        let host = try #require(obj["host"] as? [String: Any])
        #expect(host["kernel"] as? String != nil && host["cgroup_layout"] as? String != nil)
    }

    @Test func helpIsInUdockersStyle() {
        let r = runUdocker(["info", "--help"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("info: show engines, host facts and usable execution modes\ninfo [options]\n--json "), "\(r.stdout)")
        let helpLine = "  info".padding(toLength: 32, withPad: " ", startingAt: 0) + ":Show engines, host and usable modes"
        #expect(runUdocker(["--help"]).stdout.contains("\n" + helpLine + "\n"))
    }
}
