// Errors whose advice works when followed: a mistyped container name in `run`, a missing proot (only
// modes that can run the container, and `install --from`), `setup --execmode` of a mode `info` says
// cannot run, and a refused connection, which fails at once instead of after the retries.
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

    @Test func aMistypedContainerNameSaysThereIsNoSuchContainerNorImageAndOffersTheCloseOnes() throws {
        let r = try busyboxContainer("mybox")
        let port = try SharedRegistry.get().registry.hostPort

        // The registry is asked (NAME could be an image there), and says it has no such image.
        let typo = r.run(["run", "mybx"])
        #expect(typo.status == 1)
        #expect(typo.stderr == "Error: no container or image named mybx: no container has that name or id, and the registry has no such image (manifest library/mybx:latest not found in \(port)); did you mean container mybox (udocker ps)?\n",
                "\(typo.stderr)")
        let never = r.run(["run", "--pull=never", "mybx"])
        #expect(never.status == 1)
        #expect(never.stderr == "Error: no container or image named mybx: no container has that name or id, and there is no local image of that name; did you mean container mybox (udocker ps)?\n",
                "\(never.stderr)")
        // Container names may have capitals, image names may not.
        let capital = r.run(["run", "MyBox"])
        #expect(capital.status == 1)
        #expect(capital.stderr.contains("no container or image named MyBox: no container has that name or id, and it cannot name an image (repository names must be lowercase); did you mean container mybox (udocker ps)?"),
                "\(capital.stderr)")
        // Close image names too, with or without the tag; nothing close: where to look.
        let image = r.run(["run", "test/busybx:oci"])
        #expect(image.status == 1 && image.stderr.hasSuffix("; did you mean image test/busybox:oci (udocker images)?\n"), "\(image.stderr)")
        let far = r.run(["run", "--pull=never", "zzzzzz"])
        #expect(far.status == 1 && far.stderr.hasSuffix("; see 'udocker ps' and 'udocker images'\n"), "\(far.stderr)")

        let right = r.run(["run", "--nobanner", "mybox", "/bin/sh", "-c", "echo ok"])
        #expect(right.status == 0 && right.stdout == "ok\n", "\(right.stderr)")
    }

    @Test func aMissingProotOffersOnlyModesThatCanRunTheContainerAndInstall() throws {
        let r = try busyboxContainer("static")
        let path = try emptyPath(r)
        // fakechroot needs a dynamic loader in the image: F1/F2 are usable here, but not for busybox.
        let info = r.run(["info"], ["PATH": path])
        #expect(info.stdout.contains("F1  usable"), "\(info.stdout)")
        let run = r.run(["run", "--nobanner", "static", "/bin/sh", "-c", "true"], ["PATH": path])
        #expect(run.status == 1)
        #expect(run.stderr.hasPrefix("Error: execution mode P1 cannot run here: proot is not installed"), "\(run.stderr)")
        #expect(run.stderr.contains("install it with 'udocker install --from=FILE|URL' (a tools bundle)"), "\(run.stderr)")
        // Without the paths the message names: a temporary directory's random name may hold "F1".
        let advice = run.stderr.replacingOccurrences(of: r.tmp, with: "TMP")
        #expect(!advice.contains("F1") && !advice.contains("F2"), "\(run.stderr)")
        #expect(run.stderr.hasSuffix("no other mode can run it on this host: see 'udocker info'\n"), "\(run.stderr)")

        // A dynamically linked image keeps them.
        #expect(r.run(["load", "-i", try HostImage.shared(HostImageSpec())]).status == 0)
        #expect(r.run(["create", "--name=dynamic", "hostimg:latest"]).status == 0)
        let dynamic = r.run(["run", "--nobanner", "dynamic", "/bin/sh", "-c", "true"], ["PATH": path])
        #expect(dynamic.status == 1 && dynamic.stderr.contains("modes that work here: F1 F2"), "\(dynamic.stderr)")
    }

    @Test func setupRefusesAModeInfoSaysCannotRunUnlessForced() throws {
        let r = try busyboxContainer("c")
        let path = try emptyPath(r)
        for mode in ["S1", "R1"] {
            let info = r.run(["info"], ["PATH": path])
            #expect(info.stdout.contains("\(mode)  unusable: "), "\(info.stdout)")
            let setup = r.run(["setup", "--execmode=\(mode)", "c"], ["PATH": path])
            #expect(setup.status == 1)
            #expect(setup.stderr.hasPrefix("Error: execution mode \(mode) cannot run here: neither "), "\(setup.stderr)")
            #expect(setup.stderr.contains("add --force to record it anyway"), "\(setup.stderr)")
            #expect(r.run(["setup", "c"]).stdout.hasPrefix("execmode: P1\n"))
        }
        // --force records it (for another host sharing the repository).
        let forced = r.run(["setup", "--execmode=S1", "--force", "c"], ["PATH": path])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(r.run(["setup", "c"]).stdout.hasPrefix("execmode: S1\n"))
        // A usable mode is still switched to as before.
        let back = r.run(["setup", "--execmode=P1", "c"])
        #expect(back.status == 0 && r.run(["setup", "c"]).stdout.hasPrefix("execmode: P1\n"), "\(back.stderr)")
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
