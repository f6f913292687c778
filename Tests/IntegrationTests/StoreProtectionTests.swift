// Sealed store (user with subuids; UDOCKER_TEST_PROTECTION): no container in any mode, as any user, changes
// store files; renames, new files and dpkg work; kill -9 while sealing; rm, rmi and store gc remove all.
import TestSupport
import Testing
import CAS
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A repository of its own in a temp dir, optionally with the sealing test image loaded.
private final class SealRepo: Sendable {
    static let image = "sealimg:1"
    static let data = "/usr/share/udocker-seal/data.txt"
    static let tool = "/usr/bin/seal-tool"
    static let toolText = "#!/bin/sh\necho tool\n"
    /// Tries to change the image's files in place, one line per attempt ("NAME ok" or "NAME fail"), then
    /// prints the modes the container shows for the chmod targets (find: Debian 12's PRoot passes statx
    /// through to the host, so `stat` would see the host's files). $1: an ELF file of the image.
    static let probe = """
        #!/bin/sh
        attempt() { name=$1; shift; if "$@" 2>/dev/null; then echo "$name ok"; else echo "$name fail"; fi; }
        attempt append-usr sh -c 'echo X >> /usr/share/udocker-seal/data.txt'
        attempt append-lib sh -c 'echo X >> /lib/udocker-seal/lib.txt'
        attempt append-bin sh -c 'echo X >> /bin/seal-tool'
        attempt append-os-release sh -c 'echo X >> /etc/os-release'
        attempt append-etc sh -c 'echo X >> /etc/hostname'
        attempt chmod-u+w chmod u+w /usr/share/udocker-seal/chmod.txt
        attempt append-after-chmod sh -c 'echo X >> /usr/share/udocker-seal/chmod.txt'
        attempt chmod-6555 chmod 6555 "$1"
        attempt touch touch /usr/share/udocker-seal/touch.txt
        rm -f /usr/share/udocker-seal/linked.txt
        attempt hard-link ln /usr/share/udocker-seal/data.txt /usr/share/udocker-seal/linked.txt
        attempt linked-content grep -qx data /usr/share/udocker-seal/linked.txt
        find /usr/share/udocker-seal/chmod.txt "$1" -printf 'mode %m\\n'

        """
    static let spec = HostImageSpec(
        name: image, withDpkg: true, extraPrograms: ["find"],
        files: [data: "data\n", "/usr/share/udocker-seal/chmod.txt": "chmod\n", "/usr/share/udocker-seal/touch.txt": "touch\n",
                "/usr/lib/udocker-seal/lib.txt": "lib\n", "/usr/lib/os-release": "PRETTY_NAME=\"udocker seal test\"\n"],
        scripts: [tool: toolText, "/usr/local/bin/seal-probe": probe],
        symlinks: ["/etc/os-release": "../usr/lib/os-release"])

    /// One repository with the image loaded for the tests that only add containers; removed at exit.
    static let shared: Result<SealRepo, any Error> = Result {
        let r = try SealRepo(removeAtExit: true)
        try r.load()
        try r.requireSealed()
        return r
    }

    let tmp: String
    let extra: [String: String]
    private let removeOnDeinit: Bool
    var repo: String { tmp + "/repo" }
    var store: String { repo + "/store" }
    var layers: String { store + "/layers/sha256" }

    init(removeAtExit: Bool = false, _ extra: [String: String] = [:]) throws {
        tmp = makeTempDirectory("seal")
        self.extra = extra
        removeOnDeinit = !removeAtExit
        if removeAtExit { BackgroundProcesses.removeAtExit(tmp) }
    }
    deinit { if removeOnDeinit { try? FileIO.removeTree(tmp) } }

    func run(_ args: [String], _ env: [String: String] = [:]) -> (status: Int32, stdout: String, stderr: String) {
        runUdocker(args, env: ["UDOCKER_DIR": repo].merging(extra) { $1 }.merging(env) { $1 })
    }

    func load(_ env: [String: String] = [:]) throws {
        let l = run(["load", "-i", try HostImage.shared(Self.spec)], env)
        try #require(l.status == 0, "load: \(l.stderr)")
    }

    /// Creates container `name` (and sets its mode) and returns its ROOT.
    @discardableResult
    func create(_ name: String, materialize: String = "auto", mode: String? = nil) throws -> String {
        let c = run(["create", "--name=" + name, "--materialize=" + materialize, Self.image])
        try #require(c.status == 0, "create --materialize=\(materialize): \(c.stderr)")
        if let mode {
            let s = run(["setup", "--execmode=" + mode, name])
            try #require(s.status == 0, "setup --execmode=\(mode): \(s.stdout)\(s.stderr)")
        }
        return try root(name)
    }

    func root(_ name: String) throws -> String {
        let p = run(["inspect", "-p", name])
        try #require(p.status == 0, "inspect -p \(name): \(p.stderr)")
        return p.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func remove(_ names: [String]) {
        for n in names {
            let r = run(["rm", n])
            #expect(r.status == 0, "rm \(n): \(r.stderr)")
        }
    }

    /// The unpacked layers (diff_id hex names).
    var layerNames: [String] { ((try? FileIO.listDirectory(layers)) ?? []).sorted() }

    func sealMark(_ layer: String) -> String? {
        (try? FileIO.readFile(layers + "/" + layer + "/sealed")).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The store is sealed: every layer has its `sealed` file naming the user's first subordinate ids.
    func requireSealed() throws {
        let ids = try sealIDs()
        try #require(!layerNames.isEmpty, "no unpacked layer in \(layers)")
        for l in layerNames {
            try #require(sealMark(l) == "\(ids.uid):\(ids.gid)\n",
                         "layer \(l) is not sealed (its sealed file: \(sealMark(l) ?? "absent")); `udocker info`: \(run(["info"]).stdout)")
        }
    }

    /// Regular files anywhere in the repository (store, containers) owned by the subordinate uid.
    func subuidFiles() throws -> [String] {
        filesOwned(by: try sealIDs().uid, under: repo)
    }

    func storeSnapshot() throws -> TreeSnapshot { try TreeSnapshot(store + "/layers") }

    func blobNames() -> [String] {
        let b = store + "/blobs/sha256"
        return ((try? FileIO.listDirectory(b)) ?? []).flatMap { p in
            ((try? FileIO.listDirectory(b + "/" + p)) ?? []).filter { !$0.contains(".") }
        }.sorted()
    }

    func containerEntries() -> [String] { ((try? FileIO.listDirectory(repo + "/containers")) ?? []).sorted() }

    func materializeProtection(_ name: String) throws -> String? {
        let bytes = try FileIO.readFile(FileIO.parent(of: try root(name)) + "/materialize.json")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        return json["protection"] as? String
    }
}

/// The user's first subordinate uid and gid, which a sealed store's files belong to.
private func sealIDs() throws -> (uid: UInt32, gid: UInt32) {
    let uid = try #require(SubordinateIDs.firstUID, "this user has no range in /etc/subuid: sealing needs one (UDOCKER_TEST_PROTECTION=detect runs the other suite)")
    let gid = try #require(SubordinateIDs.firstGID, "this user has no range in /etc/subgid")
    return (uid, gid)
}

private func text(_ path: String) -> String? {
    (try? FileIO.readFile(path)).map { String(decoding: $0, as: UTF8.self) }
}

/// "NAME ok|fail" lines and the "mode N" lines of the probe.
private func parseProbe(_ out: String) -> (results: [String: String], modes: [String]) {
    var results = [String: String](), modes = [String]()
    for line in out.split(separator: "\n") {
        let f = line.split(separator: " ").map(String.init)
        guard f.count == 2 else { continue }
        if f[0] == "mode" { modes.append(f[1]) } else { results[f[0]] = f[1] }
    }
    return (results, modes)
}

@Suite("StoreProtection", .serialized,
       .enabled(if: !StoreProtectionExpectation.detectOnly, "UDOCKER_TEST_PROTECTION=detect: this user's store is not sealed"))
struct StoreProtectionTests {
    // MARK: 1. every mode, every materialisation, root and a user

    @Test(.enabled(if: ExecutionModeSupport.available(["P1", "P2"]), "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"),
          arguments: ["P1", "P2"])
    func prootModesCannotChangeTheStore(mode: String) throws { try matrix(mode) }

    @Test(.enabled(if: ExecutionModeSupport.available(["F1", "F2"]), "\(ExecutionModeSupport.unavailableReason("F1") ?? "")"),
          arguments: ["F1", "F2"])
    func fakechrootModesCannotChangeTheStore(mode: String) throws { try matrix(mode) }

    @Test(.enabled(if: ExecutionModeSupport.available(["F3", "F4"]), "\(ExecutionModeSupport.unavailableReason("F3") ?? "")"),
          arguments: ["F3", "F4"])
    func patchedFakechrootModesCannotChangeTheStore(mode: String) throws { try matrix(mode) }

    @Test(.enabled(if: ExecutionModeSupport.available(["R1"]), "\(ExecutionModeSupport.unavailableReason("R1") ?? "")"))
    func runcCannotChangeTheStore() throws { try matrix("R1") }

    @Test(.enabled(if: ExecutionModeSupport.available(["R2", "R3"]), "\(ExecutionModeSupport.unavailableReason("R2") ?? "")"),
          arguments: ["R2", "R3"])
    func prootInRuncCannotChangeTheStore(mode: String) throws { try matrix(mode) }

    /// Containers in `mode` made by auto, link and copy each run the probe as the default user (emulated
    /// root in the P and R modes) and as uid 1000; then the store, another container and a new container
    /// are what they were, and the store verifies.
    func matrix(_ mode: String) throws {
        let r = try SealRepo.shared.get()
        let loader = try HostImage.loader()
        let before = try r.storeSnapshot()
        let otherRoot = try r.create("\(mode)-other")
        let other = try TreeSnapshot(otherRoot)
        let otherContent = try TreeSnapshot(otherRoot, inodes: false, rootEntry: false)
        var names = ["\(mode)-other"]

        for materialize in ["auto", "link", "copy"] {
            let name = "\(mode)-\(materialize)"
            try r.create(name, materialize: materialize, mode: mode)
            names.append(name)
            if materialize != "copy" { #expect(try r.materializeProtection(name) == "sealed") }
            for user in [nil, "1000"] {
                let who = user.map { "--user=" + $0 } ?? "the default user"
                let run = r.run(["run", "--nobanner"] + (user.map { ["--user=" + $0] } ?? []) + [name, "/usr/local/bin/seal-probe", loader])
                try #require(run.status == 0, "\(mode) \(materialize) \(who): \(run.stdout)\(run.stderr)")
                let (results, modes) = parseProbe(run.stdout)
                let expected: [String: String], expectedModes: [String]
                if materialize == "copy" {
                    // The container's own files: every change is allowed (and stays in the container).
                    expected = Dictionary(uniqueKeysWithValues: ["append-usr", "append-lib", "append-bin", "append-os-release", "append-etc",
                                                                 "chmod-u+w", "append-after-chmod", "chmod-6555", "touch",
                                                                 "hard-link", "linked-content"].map { ($0, "ok") })
                    expectedModes = ["644", "6555"]
                } else {
                    // PRoot's root emulation (-0) turns chmod's EPERM into success without changing anything.
                    let chmodSeen = user == nil && ["P1", "P2", "R2", "R3"].contains(mode) ? "ok" : "fail"
                    expected = ["append-usr": "fail", "append-lib": "fail", "append-bin": "fail", "append-os-release": "fail",
                                "append-etc": materialize == "auto" ? "ok" : "fail", "chmod-u+w": chmodSeen,
                                "append-after-chmod": "fail", "chmod-6555": chmodSeen, "touch": "fail",
                                // A hard link to a sealed file is refused by the kernel; the preloaded
                                // library makes it a copy of the container's own.
                                "hard-link": "ok", "linked-content": "ok"]
                    expectedModes = ["444", "555"]
                }
                #expect(results == expected, "\(mode) \(materialize) as \(who): \(run.stdout)\(run.stderr)")
                #expect(!run.stderr.contains("LD_PRELOAD"), "\(mode) \(materialize) as \(who): \(run.stderr)")
                #expect(modes == expectedModes, "\(mode) \(materialize) as \(who): modes seen inside \(modes)")
            }
        }

        let storeChanges = try r.storeSnapshot().differences(from: before)
        #expect(storeChanges.isEmpty, "\(mode): the store changed: \(storeChanges.prefix(20))")
        let otherChanges = try TreeSnapshot(otherRoot).differences(from: other)
        #expect(otherChanges.isEmpty, "\(mode): another container changed: \(otherChanges.prefix(20))")
        let newRoot = try r.create("\(mode)-new")
        names.append("\(mode)-new")
        let newDifferences = try TreeSnapshot(newRoot, inodes: false, rootEntry: false).differences(from: otherContent)
        #expect(newDifferences.isEmpty, "\(mode): a container created after the runs differs: \(newDifferences.prefix(20))")
        #expect(text(newRoot + SealRepo.data) == "data\n" && text(newRoot + SealRepo.tool) == SealRepo.toolText)
        let verify = r.run(["store", "verify"])
        #expect(verify.status == 0, "\(mode): \(verify.stdout)\(verify.stderr)")
        r.remove(names)
    }

    // MARK: 2. what keeps working in a sealed auto container

    @Test(.enabled(if: ExecutionModeSupport.unavailableReason("P1") == nil, "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func replacingFilesNewFilesAndDpkgWorkAsRootInP1() throws { try replacingWorks("P1") }

    @Test(.enabled(if: ExecutionModeSupport.unavailableReason("R1") == nil, "\(ExecutionModeSupport.unavailableReason("R1") ?? "")"))
    func replacingFilesNewFilesAndDpkgWorkAsRootInR1() throws { try replacingWorks("R1") }

    func replacingWorks(_ mode: String) throws {
        let r = try SealRepo.shared.get()
        let before = try r.storeSnapshot()
        let name = "replace-\(mode)", otherName = "replace-\(mode)-other"
        let root = try r.create(name, mode: mode)
        let otherRoot = try r.create(otherName, mode: mode)
        let debs = r.tmp + "/debs-\(mode)"
        try FileIO.mkdirs(debs)
        let newDeb = try HostImage.buildDeb(name: "udocker-new", version: "1.0",
                                            files: ["/usr/share/udocker-pkg/new.txt": "from the new package\n"], into: debs)
        let replaceDeb = try HostImage.buildDeb(name: "udocker-seal-data", version: "1.0",
                                                files: [SealRepo.data: "from the package\n"], into: debs)

        // apt-get's way: a copy beside the old file, changed, renamed over it; and new files.
        let script = """
            set -e
            cp \(SealRepo.tool) \(SealRepo.tool).new
            chmod u+w \(SealRepo.tool).new
            echo 'echo replaced' >> \(SealRepo.tool).new
            mv \(SealRepo.tool).new \(SealRepo.tool)
            seal-tool
            mkdir -p /usr/share/udocker-made /usr/lib/udocker-made
            echo made > /usr/share/udocker-made/made.txt
            echo lib > /usr/lib/udocker-made/lib.txt
            cat /usr/share/udocker-made/made.txt /lib/udocker-made/lib.txt
            """
        let replace = r.run(["run", "--nobanner", name, "/bin/sh", "-c", script])
        #expect(replace.status == 0 && replace.stdout == "tool\nreplaced\nmade\nlib\n", "\(mode): \(replace.stdout)\(replace.stderr)")
        #expect(text(root + SealRepo.tool) == SealRepo.toolText + "echo replaced\n")

        let install = r.run(["run", "--nobanner", "-v", debs + ":/debs", name, "dpkg", "-i", "/debs/" + FileIO.basename(of: newDeb)])
        #expect(install.status == 0 && install.stdout.contains("Setting up udocker-new (1.0) ..."), "\(mode): \(install.stdout)\(install.stderr)")
        let installed = r.run(["run", "--nobanner", name, "/bin/sh", "-c", "cat /usr/share/udocker-pkg/new.txt; dpkg -s udocker-new | grep ^Status"])
        #expect(installed.stdout == "from the new package\nStatus: install ok installed\n", "\(mode): \(installed.stdout)\(installed.stderr)")

        // A package replacing a file of the image (linked from the store): dpkg first hard-links the
        // old file as a backup, which the kernel refuses for a sealed file; the preloaded library
        // makes that link a copy.
        let upgrade = r.run(["run", "--nobanner", "-v", debs + ":/debs", name, "dpkg", "-i", "/debs/" + FileIO.basename(of: replaceDeb)])
        #expect(upgrade.status == 0 && upgrade.stdout.contains("Setting up udocker-seal-data (1.0) ..."), "\(mode): \(upgrade.stdout)\(upgrade.stderr)")
        #expect(text(root + SealRepo.data) == "from the package\n")
        #expect(!FileIO.exists(root + SealRepo.data + ".dpkg-tmp"), "\(mode): dpkg's backup was left behind")
        let listed = r.run(["run", "--nobanner", name, "/bin/sh", "-c", "cat \(SealRepo.data); dpkg -s udocker-seal-data | grep ^Status"])
        #expect(listed.stdout == "from the package\nStatus: install ok installed\n", "\(mode): \(listed.stdout)\(listed.stderr)")

        // Nothing reached the store or the other container.
        let storeChanges = try r.storeSnapshot().differences(from: before)
        #expect(storeChanges.isEmpty, "\(mode): the store changed: \(storeChanges.prefix(20))")
        #expect(text(otherRoot + SealRepo.tool) == SealRepo.toolText && text(otherRoot + SealRepo.data) == "data\n")
        #expect(!FileIO.exists(otherRoot + "/usr/share/udocker-made") && !FileIO.exists(otherRoot + "/usr/share/udocker-pkg"))
        let verify = r.run(["store", "verify"])
        #expect(verify.status == 0, "\(mode): \(verify.stdout)\(verify.stderr)")
        r.remove([name, otherName])
    }

    // MARK: 3. what the user sees

    @Test func infoHostFilesAndContainersSaySealed() throws {
        let r = try SealRepo.shared.get()
        let ids = try sealIDs()
        let info = r.run(["info"])
        #expect(info.stdout.contains("store protection: sealed: unpacked files belong to subordinate uid \(ids.uid) and gid \(ids.gid)"), "\(info.stdout)")
        for l in r.layerNames {
            let root = r.layers + "/" + l + "/root"
            #expect(filesOwned(by: getuid(), under: root).isEmpty, "files of layer \(l) still the user's")
            for (path, mode) in [(SealRepo.data, 0o444), (SealRepo.tool, 0o555)] as [(String, mode_t)] {
                var st = stat()
                #expect(lstat(root + path, &st) == 0 && st.st_uid == ids.uid && st.st_gid == ids.gid && st.st_mode & 0o7777 == mode,
                        "\(path): \(st.st_uid):\(st.st_gid) \(String(st.st_mode & 0o7777, radix: 8))")
            }
        }
        for m in ["auto", "link"] {
            try r.create("seen-\(m)", materialize: m)
            #expect(try r.materializeProtection("seen-\(m)") == "sealed")
        }
        r.remove(["seen-auto", "seen-link"])
    }

    @Test(.enabled(if: ExecutionModeSupport.unavailableReason("P1") == nil, "\(ExecutionModeSupport.unavailableReason("P1") ?? "")"))
    func ownerSeenInsideP1IsTheSubuid() throws {
        let (stat, find) = try ownerSeenInside("P1")
        // Debian 12's PRoot 5.1.0 passes statx(2) through untranslated: stat(1) sees the host's path.
        print("StoreProtection: P1 stat(1) (statx, which this PRoot does not translate) shows \(stat)")
        #expect(find == "\(try sealIDs().uid):\(try sealIDs().gid)")
    }

    @Test(.enabled(if: ExecutionModeSupport.unavailableReason("F1") == nil, "\(ExecutionModeSupport.unavailableReason("F1") ?? "")"))
    func ownerSeenInsideF1IsTheSubuid() throws {
        let (stat, find) = try ownerSeenInside("F1")
        let ids = try sealIDs()
        #expect(stat == "\(ids.uid):\(ids.gid)" && find == stat)
    }

    @Test(.enabled(if: ExecutionModeSupport.unavailableReason("R1") == nil, "\(ExecutionModeSupport.unavailableReason("R1") ?? "")"))
    func ownerSeenInsideR1IsNobody() throws {
        let (stat, find) = try ownerSeenInside("R1")
        #expect(stat == "65534:65534" && find == stat, "the subuid is not mapped in R1's namespace: nobody")
    }

    /// The owner `stat -c %u:%g` and `find -printf %U:%G` show for a linked store file in `mode`; printed.
    func ownerSeenInside(_ mode: String) throws -> (stat: String, find: String) {
        let r = try SealRepo.shared.get()
        let name = "owner-\(mode)"
        try r.create(name, mode: mode)
        defer { r.remove([name]) }
        let run = r.run(["run", "--nobanner", name, "/bin/sh", "-c", "stat -c %u:%g \(SealRepo.tool) 2>/dev/null || echo failed; find \(SealRepo.tool) -printf '%U:%G\\n'"])
        let lines = run.stdout.split(separator: "\n").map(String.init)
        print("StoreProtection: owner of a linked store file (\(SealRepo.tool)) inside \(mode): stat \(lines.first ?? "?"), find \(lines.last ?? "?") (subuid \(SubordinateIDs.firstUID.map(String.init) ?? "none"))")
        try #require(lines.count == 2, "\(mode): \(run.stdout)\(run.stderr)")
        return (lines[0], lines[1])
    }

    // MARK: 4. kill -9 while sealing

    @Test func loadKilledWhileSealingLeavesAStoreThatVerifiesAndTheNextLoadSeals() throws {
        let r = try SealRepo()
        let ids = try sealIDs()
        let killed = r.run(["load", "-i", try HostImage.shared(SealRepo.spec)], ["UDOCKER_FAILPOINT": "seal-mid"])
        #expect(killed.status == 128 + SIGKILL, "\(killed.stdout)\(killed.stderr)")
        // The half-sealed layer is only in STORE/tmp: no layer, no image.
        #expect(r.layerNames.isEmpty, "\(r.layerNames)")
        let tmp = r.store + "/tmp"
        #expect(!filesOwned(by: ids.uid, under: tmp).isEmpty && !filesOwned(by: getuid(), under: tmp).isEmpty,
                "the failpoint should leave a half-sealed temp layer")
        #expect(!r.run(["images"]).stdout.contains(SealRepo.image))

        let verify = r.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        #expect(((try? FileIO.listDirectory(tmp)) ?? []).isEmpty, "the killed load's temp files are swept")

        try r.load()
        #expect(r.run(["images"]).stdout.contains(SealRepo.image))
        try r.requireSealed()
        for l in r.layerNames {
            #expect(filesOwned(by: getuid(), under: r.layers + "/" + l + "/root").isEmpty)
        }
        let again = r.run(["store", "verify"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
    }

    /// A repository whose layer was unpacked unsealed, then a `create` killed while sealing it in place.
    private func killedCreate() throws -> SealRepo {
        let r = try SealRepo()
        try r.load(["UDOCKER_STORE_PROTECTION": "detect"])
        let layer = try #require(r.layerNames.first)
        try #require(r.sealMark(layer) == nil, "UDOCKER_STORE_PROTECTION=detect left the layer unsealed")
        let root = r.layers + "/" + layer + "/root"
        try #require(filesOwned(by: try sealIDs().uid, under: root).isEmpty)

        let killed = r.run(["create", "--name=c", SealRepo.image], ["UDOCKER_FAILPOINT": "seal-mid"])
        #expect(killed.status == 128 + SIGKILL, "\(killed.stdout)\(killed.stderr)")
        // Half the files changed owner; the layer is not marked sealed.
        #expect(!filesOwned(by: try sealIDs().uid, under: root).isEmpty && !filesOwned(by: getuid(), under: root).isEmpty)
        #expect(r.sealMark(layer) == nil)
        return r
    }

    @Test func createKilledWhileSealingInPlaceLeavesAStoreThatVerifiesAndTheNextCreateSeals() throws {
        let r = try killedCreate()
        #expect(!r.run(["ps"]).stdout.contains("['c']"))
        let verify = r.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")

        let root = try r.create("c")
        try r.requireSealed()
        for l in r.layerNames {
            #expect(filesOwned(by: getuid(), under: r.layers + "/" + l + "/root").isEmpty)
        }
        #expect(try r.materializeProtection("c") == "sealed")
        #expect(text(root + SealRepo.data) == "data\n")
        let again = r.run(["store", "verify"])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
    }

    @Test func createKilledWhileSealingLeavesNothingOnceTheImageIsRemoved() throws {
        let r = try killedCreate()
        let rmi = r.run(["rmi", SealRepo.image])
        #expect(rmi.status == 0, "\(rmi.stderr)")
        let gc = r.run(["store", "gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        // The killed create's containers/.new.<id> and its store reference should not outlive it.
        #expect(r.containerEntries().isEmpty, "\(r.containerEntries())")
        #expect(r.layerNames.isEmpty && r.blobNames().isEmpty, "layers \(r.layerNames), blobs \(r.blobNames())")
    }

    // MARK: 5. rm, rmi and store gc

    @Test func rmRmiAndGcRemoveEverythingSealed() throws {
        let r = try SealRepo()
        let ids = try sealIDs()
        try r.load()
        try r.requireSealed()
        for m in ["auto", "link", "copy"] { try r.create(m, materialize: m) }
        let clone = r.run(["clone", "--name=cloned", "auto"])
        #expect(clone.status == 0, "\(clone.stderr)")
        #expect(try r.materializeProtection("cloned") == "sealed")
        #expect(text(try r.root("cloned") + SealRepo.data) == "data\n")
        if ExecutionModeSupport.unavailableReason("P1") == nil {
            let run = r.run(["run", "--nobanner", "auto", "/bin/sh", "-c", "echo mine > /usr/share/mine.txt"])
            #expect(run.status == 0, "\(run.stderr)")
            let once = r.run(["run", "--rm", "--nobanner", SealRepo.image, "/bin/cat", SealRepo.data])
            #expect(once.status == 0 && once.stdout == "data\n", "\(once.stdout)\(once.stderr)")
        }

        r.remove(["auto", "link", "copy", "cloned"])
        #expect(r.containerEntries().isEmpty, "\(r.containerEntries())")
        #expect(!r.layerNames.isEmpty, "the image still holds its layer")
        let rmi = r.run(["rmi", SealRepo.image])
        #expect(rmi.status == 0, "\(rmi.stderr)")
        #expect(r.layerNames.isEmpty && r.blobNames().isEmpty, "layers \(r.layerNames), blobs \(r.blobNames())")
        let left = try r.subuidFiles()
        #expect(left.isEmpty, "files still owned by the subuid: \(left.prefix(10))")

        // rmi -f while a container links the layer: the container keeps it, its rm removes it.
        try r.load()
        try r.create("kept")
        let forced = r.run(["rmi", "-f", SealRepo.image])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(!r.layerNames.isEmpty)
        #expect(text(try r.root("kept") + SealRepo.data) == "data\n")
        r.remove(["kept"])
        #expect(r.containerEntries().isEmpty && r.layerNames.isEmpty, "\(r.containerEntries()) \(r.layerNames)")

        // A layer no image holds (store ingest + unpack) is sealed too, and gc removes it.
        var tar = TarBuilder()
        tar.directory("usr")
        tar.directory("usr/bin")
        tar.file("usr/bin/run-me", "#!/bin/sh\necho ran\n", mode: 0o755)
        tar.directory("etc")
        tar.file("etc/conf", "conf\n")
        let layerFile = r.tmp + "/layer.tar"
        try tar.write(to: layerFile)
        let ingest = r.run(["store", "ingest", layerFile])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let digest = String(ingest.stdout.split(separator: " ").first ?? "")
        let unpack = r.run(["store", "unpack", digest])
        #expect(unpack.status == 0, "\(unpack.stdout)\(unpack.stderr)")
        #expect(r.layerNames.count == 1 && r.layerNames.allSatisfy { r.sealMark($0) == "\(ids.uid):\(ids.gid)\n" }, "\(r.layerNames)")
        #expect(!(try r.subuidFiles()).isEmpty)
        let gc = r.run(["store", "gc"])
        #expect(gc.status == 0, "\(gc.stdout)\(gc.stderr)")
        #expect(r.layerNames.isEmpty && r.blobNames().isEmpty, "layers \(r.layerNames), blobs \(r.blobNames())")
        let leftAfterGC = try r.subuidFiles()
        #expect(leftAfterGC.isEmpty, "files still owned by the subuid: \(leftAfterGC.prefix(10))")
        #expect(((try? FileIO.listDirectory(r.store + "/tmp")) ?? []).isEmpty)
        let verify = r.run(["store", "verify"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
    }
}
