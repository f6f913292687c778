// How a run ends, in every execution mode: the program's exit code, 128+N when signal N ended it (as
// udocker's manual promises), and nothing from the engine on standard error unless -D.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository of its own with the host-programs image loaded (it runs in every mode).
private final class ModesRepo {
    let tmp: String
    let env: [String: String]

    init() throws {
        tmp = makeTempDirectory("exit-status")
        env = ["UDOCKER_DIR": tmp + "/repo"]
        let load = run(["load", "-i", try HostImage.shared(HostImageSpec())])
        try #require(load.status == 0, "load: \(load.stderr)")
    }

    deinit {
        _ = try? runCommand("/bin/chmod", ["-R", "u+rwX", tmp])
        try? FileIO.removeTree(tmp)
    }

    func run(_ args: [String]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: env)
    }

    /// Container `name` in `mode`, run once: the first run may say something once (why crun is not used).
    func container(_ name: String, mode: String) throws {
        let c = run(["create", "--name=" + name, "hostimg:latest"])
        try #require(c.status == 0, "create: \(c.stderr)")
        let s = run(["setup", "--execmode=" + mode, name])
        try #require(s.status == 0, "setup --execmode=\(mode): \(s.stdout)\(s.stderr)")
        let first = run(["run", "--nobanner", name, "/bin/true"])
        try #require(first.status == 0, "\(mode): \(first.stderr)")
    }
}

@Suite("ExitStatus") struct ExitStatusTests {
    /// In `mode`: TERM gives 143 and an exit code is passed on, with standard error the program's only.
    func endsAsTheProgramDid(_ modes: [String], rm: Bool = false) throws {
        let r = try ModesRepo()
        for mode in modes {
            let name = "c-" + mode
            try r.container(name, mode: mode)
            let opts = ["run", "--nobanner"] + (rm ? ["--rm"] : [])
            let killed = r.run(opts + [name, "/bin/sh", "-c", "kill -TERM $$"])
            #expect(killed.status == 143, "\(mode): exit status \(killed.status), stderr \(killed.stderr)")
            #expect(killed.stderr == "", "\(mode): the engine spoke: \(killed.stderr)")
            if rm { try r.container(name, mode: mode) }
            let exited = r.run(opts + [name, "/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
            #expect(exited.status == 7 && exited.stdout == "out\n", "\(mode): \(exited)")
            #expect(exited.stderr == "err\n", "\(mode): \(exited.stderr)")
            // -D shows what the engine says (PRoot: "terminated with signal 15").
            if mode.hasPrefix("P") {
                let debug = r.run(["-D"] + opts + [name, "/bin/sh", "-c", "kill -TERM $$"])
                #expect(debug.status == 143 && debug.stderr.contains("proot info:"), "\(mode): \(debug.stderr)")
            }
        }
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["P1", "P2"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func prootModes() throws { try endsAsTheProgramDid(["P1", "P2"]) }

    @Test(.enabled(if: ExecutionModeSupport.available(["F1", "F2", "F3", "F4"]), "\(ExecutionModeSupport.unavailableReason("F3") ?? "")"))
    func fakechrootModes() throws { try endsAsTheProgramDid(["F1", "F2", "F3", "F4"]) }

    /// With --rm udocker waits for the program instead of becoming it (F modes exec otherwise).
    @Test(.enabled(if: ExecutionModeSupport.available(["F1"]), "\(ExecutionModeSupport.unavailableReason("F1") ?? "")"))
    func fakechrootWithRm() throws { try endsAsTheProgramDid(["F1"], rm: true) }

    @Test(.enabled(if: ExecutionModeSupport.available(["R1", "R2", "R3"]), "\(ExecutionModeSupport.unavailableReason("R2") ?? "")"))
    func runcModes() throws { try endsAsTheProgramDid(["R1", "R2", "R3"]) }

    @Test(.enabled(if: ExecutionModeSupport.available(["S1"]), "\(ExecutionModeSupport.unavailableReason("S1") ?? "")"))
    func singularityMode() throws { try endsAsTheProgramDid(["S1"]) }
}
