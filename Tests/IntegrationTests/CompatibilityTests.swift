// One test per row of docs/compatibility.md: each holds what udocker for Swift does where a script can
// tell it from udocker 1.3.17 (the row says what 1.3.17 does and why we differ).
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CompatibilityTests {
    /// A temp directory removed at the end, with a repository made by `mkrepo` in `dir/repo`.
    final class PlainRepo {
        let dir: String
        var repo: String { dir + "/repo" }
        var env: [String: String] { ["UDOCKER_DIR": repo] }
        init(_ label: String) throws {
            dir = makeTempDirectory(label)
            let m = runUdocker(["mkrepo", dir + "/repo"])
            try #require(m.status == 0, "mkrepo: \(m.stderr)")
        }
        deinit { try? FileIO.removeTree(dir) }
        func run(_ args: [String], _ extra: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
            runUdocker(args, env: env.merging(extra) { $1 })
        }
    }

    /// The lines of `text`, without the empty one after a final newline.
    static func lines(_ text: String) -> [String] {
        var l = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() }
        return l
    }

    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    /// `tar -tv --numeric-owner` of an archive: (type and mode, owner "uid/gid", path) per entry.
    static func tarListing(_ path: String) throws -> [(mode: String, owner: String, path: String)] {
        let out = String(decoding: try runCommand("/bin/tar", ["--numeric-owner", "-tvf", path]), as: UTF8.self)
        return lines(out).map { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // mode owner size date time path [-> target]
            let path = f.count > 5 ? f[5] : ""
            return (f.first ?? "", f.count > 1 ? f[1] : "", path)
        }
    }

    static let hostImage = HostImageSpec(name: "compat/host:1")

    // MARK: command line

    @Test func versionHasAnImplementationAndABuildLine() {
        let r = runUdocker(["version"])
        #expect(r.status == 0 && r.stderr == "", "\(r.stderr)")
        let l = Self.lines(r.stdout)
        #expect(l.count == 5, "\(r.stdout)")
        // udocker 1.3.17's own version and tarball lines, as it prints them.
        #expect(l.first == "version: 1.3.17", "\(r.stdout)")
        #expect(l.dropFirst().first == "tarball: https://download.a.incd.pt/udocker/udocker-englib-1.2.11.tar.gz "
            + "https://raw.githubusercontent.com/jorge-lip/udocker-builds/master/tarballs/udocker-englib-1.2.11.tar.gz", "\(r.stdout)")
        #expect(l.dropFirst(2).first == "tarball_release: 1.2.11", "\(r.stdout)")
        #expect(l.dropFirst(3).first?.hasPrefix("implementation: udocker-swift ") == true, "\(r.stdout)")
        // Not from a release: no launcher named one.
        #expect(l.last == "build: development (not a release)", "\(r.stdout)")
        #expect(runUdocker(["--version"]).stdout == r.stdout && runUdocker(["-V"]).stdout == r.stdout)
    }

    @Test func helpVersionAndShowconfDoNotCreateTheRepository() throws {
        let home = makeTempDirectory("compat-home")
        defer { try? FileIO.removeTree(home) }
        for args in [["version"], ["--help"], ["help", "pull"], ["pull", "--help"], ["showconf"]] {
            let r = runUdocker(args, env: ["HOME": home])
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(!r.stdout.contains("creating repo"), "\(args): \(r.stdout)")
            #expect(!FileIO.exists(home + "/.udocker"), "\(args) made the repository")
        }
        let images = runUdocker(["images"], env: ["HOME": home])
        #expect(images.status == 0 && images.stdout.hasPrefix("Info: creating repo: \(home)/.udocker\n"), "\(images.stdout)")
        #expect(FileIO.isDirectory(home + "/.udocker/repos"))
    }

    @Test func helpForACommandInEveryForm() {
        let forms = [["run", "--help"], ["run", "-h"], ["help", "run"], ["--help", "run"], ["-h", "run"]]
        let results = forms.map { runUdocker($0) }
        for (args, r) in zip(forms, results) {
            #expect(r.status == 0 && r.stderr == "", "\(args): \(r.stderr)")
            #expect(r.stdout.hasPrefix("run: "), "\(args): \(r.stdout.prefix(200))")
            #expect(r.stdout == results[0].stdout, "\(args)")
        }
    }

    @Test func errorsAreOneLineThatSaysWhatToDo() throws {
        let r = try PlainRepo("compat-errors")
        let cases: [([String], String)] = [
            (["frobnicate"], "Error: invalid command 'frobnicate': see 'udocker --help' for the list of commands\n"),
            (["rm", "nosuch"], "Error: container not found: nosuch: see 'udocker ps'\n"),
            (["rmname", "nosuch"], "Error: no container has the name nosuch: see 'udocker ps'\n"),
            (["verify", "nosuch/img"], "Error: image not found: nosuch/img:latest: see 'udocker images', or pull it with 'udocker pull nosuch/img:latest'\n"),
        ]
        for (args, message) in cases {
            let e = r.run(args)
            #expect(e.status == 1, "\(args)")
            #expect(e.stdout == "", "\(args): \(e.stdout)")
            #expect(e.stderr == message, "\(args): \(e.stderr)")
        }
    }

    @Test func commandsAndOptionsBeyondUdocker13() throws {
        let r = try PlainRepo("compat-beyond")
        let info = r.run(["info", "--json"])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(Self.json(info.stdout)?["modes"] != nil, "\(info.stdout.prefix(300))")
        for (command, option) in [("push", "push"), ("store", "store"), ("create", "--materialize="), ("run", "--pull="),
                                  ("save", "--format=oci"), ("load", "--platform="), ("mkrepo", "--store="),
                                  ("manifest", "--index")] {
            let h = runUdocker([command, "--help"])
            #expect(h.status == 0 && h.stdout.contains(option), "\(command) --help: \(h.stdout.prefix(300)) \(h.stderr)")
        }
    }

    // MARK: messages

    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func bannerAndDebugLinesGoToStderr() throws {
        let r = try ImportedBusyboxRepo(label: "compat-streams")
        let id = try r.create("c")
        let run = r.run(["run", "c", "/bin/echo", "hi"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout == "hi\n", "\(run.stdout)")
        #expect(run.stderr.contains("*               STARTING \(id)                *\n"), "\(run.stderr)")
        #expect(run.stderr.contains("executing: echo\n"), "\(run.stderr)")
        let debug = r.run(["-D", "run", "--nobanner", "c", "/bin/echo", "hi"])
        #expect(debug.status == 0 && debug.stdout == "hi\n", "\(debug.stdout)")
        #expect(debug.stderr.contains("Debug: "), "\(debug.stderr)")
    }

    /// As udocker 1.3.17: the banner is drawn with the engine's character (`*` PRoot, `%` runc), and
    /// PS1 is the container's short id with `#` for root, `\$` for another user.
    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func bannerCharacterAndPromptAreUdockers() throws {
        let r = try ImportedBusyboxRepo(label: "compat-banner")
        let id = try r.create("c")
        let short = String(id.prefix(8))
        let root = r.run(["run", "c", "/bin/sh", "-c", "echo \"$PS1\""])
        #expect(root.status == 0 && root.stdout == short + "# \n", "\(root.stdout)\(root.stderr)")
        #expect(root.stderr.hasPrefix(String(repeating: "*", count: 78) + "\n"), "\(root.stderr)")
        let user = r.run(["run", "--nobanner", "--user=1000", "c", "/bin/sh", "-c", "echo \"$PS1\""])
        #expect(user.status == 0 && user.stdout == short + "\\$ \n", "\(user.stdout)\(user.stderr)")
        if ExecutionModeSupport.available(["R1"]) {
            #expect(r.run(["setup", "--execmode=R1", "c"]).status == 0)
            let runc = r.run(["run", "c", "/bin/true"])
            #expect(runc.status == 0 && runc.stderr.contains(String(repeating: "%", count: 78) + "\n"), "\(runc.stderr)")
        }
    }

    /// As udocker 1.3.17: a run that cannot be set up exits 2; a container that does not exist is 1.
    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func runSetUpFailuresExit2() throws {
        let r = try ImportedBusyboxRepo(label: "compat-exit2")
        _ = try r.create("c")
        for args in [["c", "/nonexistent"], ["-v", "/nonexistent/x:/x", "c", "/bin/true"], ["-w", "/nonexist", "c", "/bin/true"]] {
            let run = r.run(["run", "--nobanner"] + args)
            #expect(run.status == 2 && run.stderr.hasPrefix("Error: ") && run.stdout == "", "\(args): \(run.status) \(run.stderr)")
        }
        let missing = r.run(["run", "--pull=never", "nosuch", "/bin/true"])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("Error: "), "\(missing.stderr)")
    }

    /// udocker 1.3.17 accepts --dns, --dns-search and --volumes-from and ignores them; so do we,
    /// with a warning.
    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func dnsAndVolumesFromAreAcceptedAndIgnored() throws {
        let r = try ImportedBusyboxRepo(label: "compat-dns")
        _ = try r.create("c")
        let run = r.run(["run", "--nobanner", "--dns=192.0.2.1", "--dns-search", "example.org", "--volumes-from=other", "c", "/bin/echo", "ran"])
        #expect(run.status == 0 && run.stdout == "ran\n", "\(run.stdout)\(run.stderr)")
        for option in ["--volumes-from", "--dns", "--dns-search"] {
            #expect(run.stderr.contains("Warning: \(option) is ignored"), "\(run.stderr)")
        }
    }

    @Test func pullImportLoadSaveAndVerifySayWhatTheyDid() throws {
        let s = try SharedRegistry.get()
        let r = try PlainRepo("compat-messages")
        let env = ["UDOCKER_REGISTRY": s.registry.url]

        let pull = r.run(["pull", "test/busybox:oci"], env)
        #expect(pull.status == 0, "\(pull.stderr)")
        let pulled = Self.lines(pull.stdout)
        #expect(pulled.count == 1 && pulled[0].hasPrefix("Info: pulled test/busybox:oci (sha256:")
                && pulled[0].hasSuffix("): 1 of 1 layer(s) downloaded"), "\(pull.stdout)")
        #expect(!pull.stdout.contains("downloading layer"))
        #expect(pull.stderr.contains("sha256:") && pull.stderr.contains("downloaded"), "per-layer progress: \(pull.stderr)")

        let archive = r.dir + "/bb.tar"
        let save = r.run(["save", "-o", archive, "test/busybox:oci"])
        #expect(save.status == 0 && save.stdout == "Info: saved test/busybox:oci to \(archive)\n", "\(save.stdout)\(save.stderr)")
        let load = r.run(["load", "-i", archive, "other/bb"])
        #expect(load.status == 0 && load.stdout == "other/bb:oci\n", "\(load.stdout)\(load.stderr)")

        let verify = r.run(["verify", "test/busybox:oci"])
        #expect(verify.status == 0 && verify.stdout == "Info: verifying: test/busybox:oci\nInfo: image Ok\n", "\(verify.stdout)")

        let rootfs = r.dir + "/rootfs"
        try FileIO.mkdirs(rootfs + "/etc")
        try writeFile(rootfs + "/etc/hello", "hello\n")
        _ = try runCommand("/bin/tar", ["-C", rootfs, "-cf", r.dir + "/rootfs.tar", "."])
        let imp = r.run(["import", r.dir + "/rootfs.tar", "imp/one:v1"])
        #expect(imp.status == 0, "\(imp.stderr)")
        #expect(imp.stdout.hasPrefix("Info: imported imp/one:v1 (sha256:") && Self.lines(imp.stdout).count == 1, "\(imp.stdout)")
    }

    @Test func mkrepoReportsWhatItMadeAndCanBeRerun() throws {
        let dir = makeTempDirectory("compat-mkrepo")
        defer { try? FileIO.removeTree(dir) }
        let first = runUdocker(["mkrepo", dir + "/r"])
        #expect(first.status == 0, "\(first.stderr)")
        let made = Self.lines(first.stdout)
        #expect(made.count == 3, "\(first.stdout)")
        #expect(made.first == "Info: created repository: \(dir)/r")
        #expect(made.dropFirst().first == "Info: created store: \(dir)/r/store")
        #expect(made.last?.hasPrefix("Info: registered repository ") == true && made.last?.hasSuffix(" in store: \(dir)/r/store") == true)
        let again = runUdocker(["mkrepo", dir + "/r"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.hasPrefix("Info: repository already exists: \(dir)/r\n"), "\(again.stdout)")

        // A repository as udocker 1.3.17 makes it (no store): mkrepo adds the store.
        for d in ["bin", "containers", "doc", "layers", "lib", "repos"] { try FileIO.mkdirs(dir + "/old/" + d) }
        let old = runUdocker(["mkrepo", dir + "/old"])
        #expect(old.status == 0, "\(old.stderr)")
        #expect(old.stdout.contains("Info: created store: \(dir)/old/store\n"), "\(old.stdout)")
        #expect(FileIO.exists(dir + "/old/store/store.json"))
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["P1", "P2"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func setupExecmodeSaysWhatChanged() throws {
        let r = try ImportedBusyboxRepo(label: "compat-setup")
        _ = try r.create("c")
        let change = r.run(["setup", "--execmode=P2", "c"])
        #expect(change.status == 0 && change.stdout == "Info: execmode: P1 -> P2\n", "\(change.stdout)\(change.stderr)")
        let same = r.run(["setup", "--execmode=P2", "c"])
        #expect(same.status == 0 && same.stdout == "", "\(same.stdout)")
        #expect(r.run(["-q", "setup", "--execmode=P1", "c"]).stdout == "")
        let show = r.run(["setup", "c"])
        #expect(show.stdout == "execmode: P1\nnvidiamode: False\n", "\(show.stdout)")
    }

    // MARK: repository files

    @Test func imagesLiveInTheContentStore() throws {
        let r = try ImportedBusyboxRepo(label: "compat-layout")
        let image = r.repo + "/repos/test/bb/1"
        #expect(Set(try FileIO.listDirectory(image)) == ["TAG", "image.json"])
        #expect(r.text(image + "/TAG") == r.repo + "/repos/test/bb:1")
        #expect(try FileIO.listDirectory(r.repo + "/layers").isEmpty, "layers/ is not used")
        #expect(FileIO.exists(r.repo + "/store/store.json") && FileIO.exists(r.repo + "/repo.json"))
        #expect(try !FileIO.listDirectory(r.repo + "/store/layers/sha256").isEmpty)

        // An image as udocker 1.3.17 writes it (manifest and layer links, no image.json) is not listed.
        let old = r.repo + "/repos/old/img/latest"
        try FileIO.mkdirs(old)
        try writeFile(old + "/TAG", r.repo + "/repos/old/img:latest")
        try writeFile(old + "/manifest", #"{"schemaVersion": 2, "layers": []}"#)
        try writeFile(old + "/v2", "")
        let images = r.run(["images"])
        #expect(images.status == 0 && images.stdout.contains("test/bb:1") && !images.stdout.contains("old/img"), "\(images.stdout)")
        #expect(images.stderr == "Warning: old/img:latest is an image of udocker 1.3's own format, which this udocker cannot use: pull it again (udocker pull old/img:latest)\n", "\(images.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func containerDirectoryFiles() throws {
        let r = try ImportedBusyboxRepo(label: "compat-container")
        let id = try r.create("c")
        let dir = r.containerDir(id)
        let files = Set(try FileIO.listDirectory(dir))
        #expect(files.isSuperset(of: ["ROOT", "container.json", "imagerepo.name", "execmode", "materialize.json"]), "\(files)")
        #expect(r.text(dir + "/execmode") == "P1", "written by create")
        #expect(r.text(dir + "/imagerepo.name") == "test/bb:1")
        #expect(readLinkAt(r.repo + "/containers/c") == id)

        // A container directory as udocker 1.3.17 leaves it: ROOT, container.json, imagerepo.name.
        let oldID = "a77bed59-7f08-367d-80f0-a02eae6bf033"
        let old = r.repo + "/containers/" + oldID
        try FileIO.mkdirs(old)
        _ = try runCommand("/bin/cp", ["-a", r.tmp + "/rootfs", old + "/ROOT"])
        try writeFile(old + "/container.json", #"{"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}}"#)
        try writeFile(old + "/imagerepo.name", "test/bb:1")
        let run = r.run(["run", "--nobanner", oldID, "/bin/echo", "old"])
        #expect(run.status == 0 && run.stdout == "old\n", "\(run.stdout)\(run.stderr)")
    }

    @Test func exportArchiveIsSortedWithRootOwners() throws {
        let r = try ImportedBusyboxRepo(label: "compat-export")
        _ = try r.create("c")
        let file = r.tmp + "/c.tar"
        let e = r.run(["export", "-o", file, "c"])
        #expect(e.status == 0 && e.stdout == "Info: exporting to file \(file)\n", "\(e.stdout)\(e.stderr)")
        let entries = try Self.tarListing(file)
        #expect(entries.contains { $0.path == "bin/busybox" }, "\(entries.map(\.path))")
        #expect(!entries.contains { $0.path.hasPrefix("./") || $0.path == "." }, "\(entries.map(\.path))")
        #expect(entries.map(\.path) == entries.map(\.path).sorted(), "sorted")
        if geteuid() != 0 {
            #expect(entries.allSatisfy { $0.owner == "0/0" }, "\(entries.map(\.owner))")
        }
    }

    @Test func importedImageConfig() throws {
        let r = try ImportedBusyboxRepo(label: "compat-import")
        let inspect = r.run(["inspect", "test/bb:1"])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        let config = try #require(Self.json(inspect.stdout), "\(inspect.stdout)")
        #expect((config["config"] as? [String: Any])?.isEmpty == true, "\(inspect.stdout)")
        let history = config["history"] as? [[String: Any]]
        #expect(history?.first?["created_by"] as? String == "udocker import", "\(inspect.stdout)")
        for key in ["id", "size", "container_config", "comment"] { #expect(config[key] == nil, "\(key)") }
        #expect(config["architecture"] as? String == hostArchitecture() && config["os"] as? String == "linux")
    }

    @Test func saveArchiveLayout() throws {
        let r = try ImportedBusyboxRepo(label: "compat-save")
        let file = r.tmp + "/saved.tar"
        let save = r.run(["save", "-o", file, "test/bb:1"])
        #expect(save.status == 0, "\(save.stderr)")
        let inspect = try #require(Self.json(r.run(["inspect", "test/bb:1"]).stdout))
        let diffID = try #require(((inspect["rootfs"] as? [String: Any])?["diff_ids"] as? [String])?.first)
        let hex = String(diffID.dropFirst("sha256:".count))
        let entries = try Self.tarListing(file)
        #expect(entries.contains { $0.path == hex + "/layer.tar" }, "\(entries.map(\.path))")
        #expect(!entries.contains { $0.path.hasPrefix("./") }, "\(entries.map(\.path))")
        #expect(entries.allSatisfy { $0.owner == "0/0" }, "\(entries.map(\.owner))")
        let work = r.tmp + "/saved"
        try FileIO.mkdirs(work)
        _ = try runCommand("/bin/tar", ["-C", work, "-xf", file])
        let layer = try FileIO.readFile(work + "/" + hex + "/layer.tar")
        #expect(try sha256Digest(layer).description == diffID, "layer.tar is the uncompressed layer")
        let manifest = try #require((try JSONSerialization.jsonObject(with: Data(try FileIO.readFile(work + "/manifest.json")))) as? [[String: Any]])
        #expect(manifest.first?["Layers"] as? [String] == [hex + "/layer.tar"])
        let configName = try #require(manifest.first?["Config"] as? String)
        #expect(try sha256Digest(try FileIO.readFile(work + "/" + configName)).hex + ".json" == configName,
                "the config is named by its own digest")
    }

    // MARK: run

    @Test(.enabled(if: ExecutionModeSupport.available(["R1"]), "\(ExecutionModeSupport.unavailableReason("R1") ?? "")"))
    func runcModesKeepStreamsAndExitStatus() throws {
        let r = try RuncRepo()
        try r.container("c", mode: "R1")
        let run = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
        #expect(run.status == 3, "\(run.stderr)")
        #expect(run.stdout == "to-out\n", "\(run.stdout)")
        #expect(run.stderr.hasSuffix("to-err\n") && !run.stderr.contains("\r") && !run.stderr.contains("Popen"), "\(run.stderr)")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func prootModesRunDynamicProgramsWithTheHostsKernelRelease() throws {
        let r = try PlainRepo("compat-kernel")
        let load = r.run(["load", "-i", try HostImage.shared(Self.hostImage)])
        #expect(load.status == 0, "\(load.stderr)")
        #expect(r.run(["create", "--name=c", Self.hostImage.name]).status == 0)
        let release = String(decoding: try FileIO.readFile("/proc/sys/kernel/osrelease"), as: UTF8.self)
        for mode in ["P1", "P2"] {
            #expect(r.run(["setup", "--execmode=" + mode, "c"]).status == 0)
            let run = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "uname -r"])
            #expect(run.status == 0, "\(mode): \(run.stderr)")
            #expect(run.stdout == release, "\(mode): \(run.stdout)")
        }
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["P1"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func userWithoutPasswdEntry() throws {
        let r = try ImportedBusyboxRepo(label: "compat-user")
        let id = try r.create("c")
        let passwd = r.text(r.containerDir(id) + "/ROOT/etc/passwd")
        let run = r.run(["run", "--nobanner", "--user=4321", "c", "/bin/sh", "-c", "id -u; id -un; cat /etc/passwd"])
        #expect(run.status == 0, "\(run.stderr)")
        let l = Self.lines(run.stdout)
        #expect(l.count > 2 && l[0] == "4321" && l[1] == "udoc4321", "\(run.stdout)")
        #expect(l.contains { $0.hasPrefix("udoc4321:x:4321:") }, "\(run.stdout)")
        #expect(r.text(r.containerDir(id) + "/ROOT/etc/passwd") == passwd, "the container's own passwd is unchanged")
    }

    @Test(.enabled(if: ExecutionModeSupport.available(["F1"]), "\(ExecutionModeSupport.unavailableReason("F1") ?? "")"))
    func fakechrootModesAddTheUserToTheContainersPasswd() throws {
        let r = try PlainRepo("compat-fakechroot")
        let load = r.run(["load", "-i", try HostImage.shared(Self.hostImage)])
        #expect(load.status == 0, "\(load.stderr)")
        let id = r.run(["create", "--name=c", Self.hostImage.name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.run(["setup", "--execmode=F1", "c"]).status == 0)
        let file = r.repo + "/containers/" + id + "/ROOT/etc/passwd"
        let before = String(decoding: try FileIO.readFile(file), as: UTF8.self)
        #expect(!before.contains("udoc4321"))
        let run = r.run(["run", "--nobanner", "--user=4321", "c", "/bin/sh", "-c", "id -un"])
        #expect(run.status == 0 && run.stdout == "udoc4321\n", "\(run.stdout)\(run.stderr)")
        let after = String(decoding: try FileIO.readFile(file), as: UTF8.self)
        #expect(after.hasPrefix(before) && after.contains("\nudoc4321:x:"), "the entry stays in the container's file: \(after)")
    }

    // MARK: registries

    @Test func loginChecksCredentialsBeforeStoring() throws {
        let reg = try TestRegistry(auth: .htpasswd(user: "alice", password: "s3cret-pw"))
        defer { reg.stop() }
        let home = makeTempDirectory("compat-login")
        defer { try? FileIO.removeTree(home) }
        let env = ["HOME": home, "UDOCKER_DIR": home + "/repo"]
        #expect(runUdocker(["mkrepo", home + "/repo"]).status == 0)
        let keystore = home + "/.udocker/keystore"
        let wrong = runUdocker(["login", "--username=alice", "--password=wrong", "--registry=\(reg.url)"], env: env)
        #expect(wrong.status == 1 && wrong.stderr.hasPrefix("Error: wrong username or password for \(reg.hostPort)"), "\(wrong.stderr)")
        #expect(!FileIO.exists(keystore), "nothing stored")
        let good = runUdocker(["login", "--username=alice", "--password=s3cret-pw", "--registry=\(reg.url)"], env: env)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout == "Info: login succeeded: credentials for \(reg.hostPort) stored in \(keystore)\n", "\(good.stdout)")
        // The keystore as udocker 1.3.17 writes it: its URL keys unescaped, so `grep http://` finds them.
        let stored = String(decoding: try FileIO.readFile(keystore), as: UTF8.self)
        #expect(stored.contains("\"\(reg.url)\""), "\(stored)")
        let out = runUdocker(["logout", "--registry=\(reg.url)"], env: env)
        #expect(out.status == 0 && out.stdout == "Info: removed credentials for \(reg.hostPort)\n", "\(out.stdout)\(out.stderr)")
    }

    @Test func searchListsARegistrysCatalog() throws {
        let s = try SharedRegistry.get()
        let r = runUdocker(["search", "-a", "--registry=\(s.registry.url)", "busy"])
        #expect(r.status == 0 && r.stderr == "", "\(r.stderr)")
        #expect(Self.lines(r.stdout).contains { $0.hasPrefix("test/busybox ") }, "\(r.stdout)")
    }

    @Test func failuresNeverExitZero() throws {
        let r = try ImportedBusyboxRepo(label: "compat-status")
        _ = try r.create("c")
        // No NVIDIA libraries where this run looks for them.
        try r.configure(["lib_dirs_list_nvidia = ('\(r.tmp)/no-nvidia',)", "nvi_ldconfig = None"])
        let nvidia = r.run(["setup", "--nvidia", "c"], ["LD_LIBRARY_PATH": ""])
        #expect(nvidia.status == 1 && nvidia.stderr.hasPrefix("Error: host NVIDIA libraries not found"), "\(nvidia.stderr)")
        let closed = freePort()
        let search = r.run(["search", "--index=http://127.0.0.1:\(closed)", "busybox"])
        #expect(search.status == 1 && search.stderr.hasPrefix("Error: "), "\(search.stderr)")
        let manifest = r.run(["manifest", "inspect", "nosuch/img"], ["UDOCKER_REGISTRY": try SharedRegistry.get().registry.url])
        #expect(manifest.status == 1 && manifest.stdout == "" && manifest.stderr.hasPrefix("Error: "), "\(manifest.stdout)")
        let config = r.run(["--config=\(r.tmp)/missing.conf", "images"])
        #expect(config.status == 1 && config.stderr.hasPrefix("Error: configuration file \(r.tmp)/missing.conf does not exist"), "\(config.stderr)")
    }

    // MARK: configuration

    @Test func configurationFilesWithoutHeaderOrWithAWrongLine() throws {
        let r = try PlainRepo("compat-config")
        try writeFile(r.dir + "/plain.conf", "pull_parallel = 5\n")
        let plain = r.run(["--config=\(r.dir)/plain.conf", "showconf"])
        #expect(plain.status == 0 && Self.lines(plain.stdout).contains("pull_parallel = 5"), "\(plain.stderr)")
        try writeFile(r.dir + "/bad.conf", "[DEFAULT]\nthis is not ini\n")
        let bad = r.run(["--config=\(r.dir)/bad.conf", "images"])
        #expect(bad.status == 1 && bad.stdout == "", "\(bad.stdout)")
        #expect(bad.stderr.hasPrefix("Error: \(r.dir)/bad.conf line 2: expected 'key = value'"), "\(bad.stderr)")
    }

    @Test func emptyVariableCountsAsUnset() throws {
        let home = makeTempDirectory("compat-empty")
        defer { try? FileIO.removeTree(home) }
        let r = runUdocker(["showconf"], env: ["HOME": home, "UDOCKER_DIR": "", "UDOCKER_DEFAULT_EXECUTION_MODE": ""])
        #expect(r.status == 0, "\(r.stderr)")
        let l = Self.lines(r.stdout)
        #expect(l.contains("topdir = \(home)/.udocker"), "\(r.stdout)")
        #expect(l.contains("override_default_execution_mode = "), "\(r.stdout)")
    }

    @Test func showconfListsTheAddedKeys() throws {
        let r = runUdocker(["showconf"], env: ["UDOCKER_MATERIALIZE": "copy", "UDOCKER_PULL_PARALLEL": "2",
                                               "UDOCKER_TIMEOUT": "5", "UDOCKER_DOWNLOAD_LOW_SPEED_TIME": "7"])
        #expect(r.status == 0, "\(r.stderr)")
        let l = Self.lines(r.stdout)
        for line in ["storedir = None", "materialize = copy", "pull_parallel = 2", "nvi_ldconfig = ldconfig",
                     "timeout = 5", "download_timeout = 1800", "download_low_speed_limit = 1000",
                     "download_low_speed_time = 7", "max_document_size = 8388608", "max_layer_expansion = 200"] {
            #expect(l.contains(line), "\(line) in \(r.stdout)")
        }
        #expect(l.contains { $0.hasPrefix("materialize_link_dirs = ('/usr', ") }, "\(r.stdout)")
    }

    @Test func installNeverDownloadsTheDefaultTarball() throws {
        let home = makeTempDirectory("compat-install")
        defer { try? FileIO.removeTree(home) }
        // A fresh repository without tools: commands do not try to install them.
        let images = runUdocker(["images"], env: ["HOME": home])
        #expect(images.status == 0 && images.stderr == "", "\(images.stderr)")
        #expect(images.stdout == "Info: creating repo: \(home)/.udocker\nREPOSITORY\n", "\(images.stdout)")
        let install = runUdocker(["install"], env: ["HOME": home])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(install.stdout.hasPrefix("Info: no tools bundle given") && install.stdout.contains("nothing was downloaded"), "\(install.stdout)")
        #expect(try FileIO.listDirectory(home + "/.udocker/bin").isEmpty && !FileIO.exists(home + "/.udocker/lib/BUNDLE.json"))
    }
}
