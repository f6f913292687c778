// Mode S1 through the udocker binary with a stand-in `apptainer` (a shell script written by the
// test): the command line and environment it is given, the exit code, and where it is found.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite("Singularity") struct SingularityTests {
    /// A stand-in that answers --version/--help like Apptainer, records its arguments (one per line)
    /// and environment under `dir`, then exits with `status`, or with `runs` executes the command
    /// in the image directory with PRoot as Apptainer would.
    static func standIn(_ dir: String, status: Int32 = 0, runs: Bool = false, name: String = "apptainer") throws -> String {
        let path = dir + "/" + name
        let run = runs ? """
            img=""; cwd=/
            while [ $# -gt 0 ]; do
              case "$1" in
                exec) shift ;;
                --pwd) cwd=$2; shift 2 ;;
                -B|--bind|--home) shift 2 ;;
                -*) shift ;;
                *) img=$1; shift; break ;;
              esac
            done
            exec proot -r "$img" -w "$cwd" "$@"
            """ : "exit \(status)"
        try writeExecutable(path, """
            #!/bin/sh
            case "$1" in
              --version) echo "apptainer version 1.3.0-standin"; exit 0 ;;
              --help) echo "  -s, --silent   only print errors"; exit 0 ;;
            esac
            for a in "$@"; do printf '%s\\n' "$a"; done > '\(dir)/args'
            env > '\(dir)/env'
            \(run)

            """)
        return path
    }

    func lines(_ path: String) -> [String] {
        ((try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLast().map { $0 }
    }

    /// The value after `option` each time it appears.
    func values(_ args: [String], _ option: String) -> [String] {
        args.indices.filter { args[$0] == option && $0 + 1 < args.count }.map { args[$0 + 1] }
    }

    @Test func execGetsUdockersOptionsVolumesWorkdirEnvironmentAndImage() throws {
        let r = try ImportedBusyboxRepo(label: "s1-args")
        let id = try r.create("c")
        try r.setMode(id, "S1")
        let tool = try Self.standIn(r.tmp, status: 7)
        let data = r.tmp + "/data"
        try FileIO.mkdirs(data)
        let res = r.run(["run", "--nobanner", "-v", data + ":/mnt/data", "-w", "/tmp", "-e", "FOO=bar baz",
                         "c", "/bin/echo", "hello", "world"],
                        ["UDOCKER_USE_SINGULARITY_EXECUTABLE": tool, "APPTAINER_CACHEDIR": r.tmp + "/cache",
                         "SINGULARITYENV_LEAK": "x"])
        #expect(res.status == 7, "exit code passes through: \(res.stderr)")
        let args = lines(r.tmp + "/args")
        let root = r.containerDir(id) + "/ROOT"
        try #require(args.count > 4, "\(args)")
        #expect(args[0] == "--silent")
        #expect(args[1] == "exec")
        #expect(args[2] == "-w", "singularity_options default ['-w']: \(args)")
        #expect(args.contains("--cleanenv"))
        #expect(values(args, "--pwd") == ["/tmp"])
        let binds = values(args, "-B")
        #expect(binds.contains(data + ":/mnt/data"), "\(binds)")
        #expect(binds.contains(root + "/tmp:/tmp") && binds.contains(root + "/var/tmp:/var/tmp"), "\(binds)")
        // Apptainer mounts /proc, /sys and /dev itself.
        #expect(!binds.contains { $0.hasPrefix("/proc:") || $0.hasPrefix("/dev:") || $0.hasPrefix("/sys:") }, "\(binds)")
        // The image is the container's ROOT directory, then the command by its full path.
        #expect(Array(args.suffix(4)) == [root, "/bin/echo", "hello", "world"], "\(args)")

        let env = lines(r.tmp + "/env")
        #expect(env.contains("APPTAINERENV_FOO=bar baz"), "\(env)")
        #expect(env.contains("APPTAINERENV_PATH=/usr/sbin:/sbin:/usr/bin:/bin") || env.contains("APPTAINERENV_PATH=/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"), "\(env)")
        #expect(env.contains("APPTAINERENV_container_execmode=S1"))
        #expect(env.contains("APPTAINERENV_container_uuid=" + id))
        #expect(env.contains("APPTAINERENV_PWD=/tmp"))
        #expect(!env.contains { $0.hasPrefix("APPTAINERENV_HOME=") }, "Apptainer refuses HOME as a variable")
        // Apptainer's own settings reach it; the host's container variables do not.
        #expect(env.contains("APPTAINER_CACHEDIR=" + r.tmp + "/cache"))
        #expect(!env.contains { $0.hasPrefix("SINGULARITYENV_") }, "\(env)")
        #expect(!env.contains { $0.hasPrefix("UDOCKER_DIR=") }, "the host environment is not passed")
    }

    @Test func homeIsTheContainersOwnOrTheBoundOneAndOptionsComeFromTheConfiguration() throws {
        let r = try ImportedBusyboxRepo(label: "s1-home")
        let id = try r.create("c")
        try r.setMode(id, "S1")
        try r.configure(["singularity_options = ['-w', '--nv']"])
        let tool = try Self.standIn(r.tmp)
        let root = r.containerDir(id) + "/ROOT"
        let extra = ["UDOCKER_USE_SINGULARITY_EXECUTABLE": tool]

        // Home is the user's (root's /root, or the test user's /home/user in the container's
        // passwd), the container's own directory, never the host's.
        let userHome = geteuid() == 0 ? "/root" : "/home/user"
        let plain = r.run(["run", "--nobanner", "c", "/bin/true"], extra)
        #expect(plain.status == 0, "\(plain.stderr)")
        var args = lines(r.tmp + "/args")
        #expect(Array(args[1...3]) == ["exec", "-w", "--nv"], "\(args)")
        #expect(values(args, "--home") == [root + userHome + ":" + userHome], "\(args)")

        // A volume on the home directory becomes --home, not a second bind.
        let home = r.tmp + "/myhome"
        try FileIO.mkdirs(home)
        let bound = r.run(["run", "--nobanner", "-v", home + ":" + userHome, "c", "/bin/true"], extra)
        #expect(bound.status == 0, "\(bound.stderr)")
        args = lines(r.tmp + "/args")
        #expect(values(args, "--home") == [home + ":" + userHome], "\(args)")
        #expect(!values(args, "-B").contains(home + ":" + userHome), "\(args)")

        // --bindhome binds the host home at its own path and makes it the home.
        let hostHome = r.tmp + "/hosthome"
        try FileIO.mkdirs(hostHome)
        let bh = r.run(["run", "--nobanner", "--bindhome", "c", "/bin/true"], extra.merging(["HOME": hostHome]) { $1 })
        #expect(bh.status == 0, "\(bh.stderr)")
        args = lines(r.tmp + "/args")
        #expect(values(args, "--home") == [hostHome + ":" + hostHome], "\(args)")
        #expect(!values(args, "-B").contains(hostHome + ":" + hostHome), "\(args)")
    }

    @Test func standInRunsTheCommandAndItsOutputAndStatusReachTheUser() throws {
        let r = try ImportedBusyboxRepo(label: "s1-runs")
        let id = try r.create("c")
        try r.setMode(id, "S1")
        let bin = r.tmp + "/bin"
        try FileIO.mkdirs(bin)
        _ = try Self.standIn(bin, runs: true)
        // Found in PATH, as udocker finds it.
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let res = r.run(["run", "--nobanner", "-w", "/root", "c", "/bin/sh", "-c", "echo in $(pwd); exit 3"], ["PATH": path])
        #expect(res.status == 3, "\(res.stderr)")
        #expect(res.stdout == "in /root\n", "\(res.stdout) \(res.stderr)")
        #expect(FileIO.exists(bin + "/args"))
    }

    @Test func userRootIsWarnedAboutAndPortsAreIgnored() throws {
        let r = try ImportedBusyboxRepo(label: "s1-user")
        let id = try r.create("c")
        try r.setMode(id, "S1")
        let tool = try Self.standIn(r.tmp)
        let res = r.run(["run", "--nobanner", "--user=root", "-p", "8080:80", "c", "/bin/true"],
                        ["UDOCKER_USE_SINGULARITY_EXECUTABLE": tool])
        #expect(res.status == 0, "\(res.stderr)")
        #expect(res.stderr.contains("Warning: this execution mode does not support -p --publish"), "\(res.stderr)")
        if geteuid() != 0 {
            #expect(res.stderr.contains("--user=root is not emulated"), "\(res.stderr)")
        } else {
            #expect(!res.stderr.contains("not emulated"), "root is root: \(res.stderr)")
        }
        // A user the container does not know has home /, so Apptainer is told to mount no home.
        let other = r.run(["run", "--nobanner", "--user=4321", "c", "/bin/true"], ["UDOCKER_USE_SINGULARITY_EXECUTABLE": tool])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stderr.contains("running as 'udoc4321' is not supported"), "\(other.stderr)")
        let args = lines(r.tmp + "/args")
        #expect(args.contains("--no-home") && values(args, "--home").isEmpty, "\(args)")
    }

    @Test func singularityGetsSingularityenvAndAMissingToolNamesTheModesThatWork() throws {
        let r = try ImportedBusyboxRepo(label: "s1-missing")
        let id = try r.create("c")
        try r.setMode(id, "S1")
        // A SingularityCE-like tool (no "apptainer" in --version) gets SINGULARITYENV_ variables.
        let tool = r.tmp + "/singularity"
        try writeExecutable(tool, """
            #!/bin/sh
            case "$1" in --version) echo "singularity-ce version 4.1.0"; exit 0 ;; --help) exit 0 ;; esac
            env > '\(r.tmp)/env'
            exit 0

            """)
        let s = r.run(["run", "--nobanner", "-e", "X=1", "c", "/bin/true"], ["UDOCKER_USE_SINGULARITY_EXECUTABLE": tool])
        #expect(s.status == 0, "\(s.stderr)")
        let env = lines(r.tmp + "/env")
        #expect(env.contains("SINGULARITYENV_X=1") && !env.contains { $0.hasPrefix("APPTAINERENV_") }, "\(env)")

        // A setting naming a missing program is an error, not a reason to look elsewhere.
        let bad = r.run(["run", "--nobanner", "c", "/bin/true"], ["UDOCKER_USE_SINGULARITY_EXECUTABLE": r.tmp + "/nope"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("UDOCKER_USE_SINGULARITY_EXECUTABLE"), "\(bad.stderr)")

        // Nothing installed: the error names the modes that do work.
        let empty = r.tmp + "/emptybin"
        try FileIO.mkdirs(empty)
        try FileManager.default.createSymbolicLink(atPath: empty + "/proot", withDestinationPath: "/usr/bin/proot")
        let none = r.run(["run", "--nobanner", "c", "/bin/true"], ["PATH": empty])
        #expect(none.status == 1)
        #expect(none.stderr.hasPrefix("Error: execution mode S1 cannot run here:"), "\(none.stderr)")
        #expect(none.stderr.contains("P1 P2"), "\(none.stderr)")
        #expect(none.stderr.split(separator: "\n").count == 1)
    }
}
