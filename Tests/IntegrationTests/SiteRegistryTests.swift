// A site registry that mirrors Docker Hub's paths (UDOCKER_REGISTRY, --registry, dockerio_registry_url):
// one-component names are asked for as library/NAME by pull, run, search --list-tags, manifest inspect and
// push, as udocker 1.3 does, and the names `images` lists pull, create and rmi back. Never the internet.
import TestSupport
import Testing
import CAS
import Foundation

@Suite struct SiteRegistryTests {
    /// A registry holding the shared busybox image only as library/busybox:1.36 and :latest, as a
    /// pull-through cache of Docker Hub does.
    func mirror(auth: TestRegistry.Auth = .none, credentials: (String, String)? = nil) throws -> TestRegistry {
        let layout = try SharedRegistry.get().layout
        let m = try TestRegistry(auth: auth)
        for tag in ["1.36", "latest"] {
            try m.push(layout: layout, tag: "gzip", to: "library/busybox", destTag: tag, credentials: credentials)
        }
        return m
    }

    /// The image names of `udocker -q images` (the first word of each line).
    func names(_ r: ImageRepo) -> [String] {
        r.run(["-q", "images"]).stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    @Test func oneComponentNamesAreLibraryNamesOnTheRegistryOfUdockerRegistry() throws {
        let m = try mirror()
        defer { m.stop() }
        let r = try ImageRepo(["UDOCKER_REGISTRY": m.url])

        let pull = r.run(["-D", "pull", "busybox:1.36"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(pull.stderr.contains("> GET \(m.url)/v2/library/busybox/manifests/1.36"), "\(pull.stderr)")
        #expect(names(r) == ["busybox:1.36"])

        // library/NAME is the same image; `images` lists it as NAME, which pull, rmi and create take back.
        #expect(r.run(["pull", "library/busybox"]).status == 0)
        #expect(names(r) == ["busybox:1.36", "busybox:latest"])
        for n in names(r) {
            let again = r.run(["pull", n])
            #expect(again.status == 0, "\(n): \(again.stderr)")
        }
        let rmi = r.run(["rmi", "busybox:latest"])
        #expect(rmi.status == 0, "\(rmi.stderr)")
        #expect(names(r) == ["busybox:1.36"])
        #expect(r.run(["pull", "busybox"]).status == 0)
        let create = r.run(["create", "--name=c", "busybox:latest"])
        #expect(create.status == 0, "\(create.stderr)")
        let inC = r.run(["run", "--nobanner", "c", "/bin/sh", "-c", "echo in-c"])
        #expect(inC.status == 0 && inC.stdout == "in-c\n", "\(inC.stderr)")

        // run pulls a one-component name from there too.
        #expect(r.run(["rmi", "busybox:1.36"]).status == 0)
        let run = r.run(["run", "--nobanner", "--rm", "busybox:1.36", "/bin/sh", "-c", "echo pulled-by-run"])
        #expect(run.status == 0 && run.stdout.hasSuffix("\npulled-by-run\n"), "\(run.stdout)\(run.stderr)")
        #expect(names(r) == ["busybox:1.36", "busybox:latest"])

        let tags = r.run(["search", "--list-tags", "busybox"])
        #expect(tags.status == 0 && lines(tags.stdout).sorted() == ["1.36", "latest"], "\(tags.stdout)\(tags.stderr)")

        // push of a one-component name goes to library/NAME; manifest inspect of a name that is not
        // local asks the registry, at library/NAME.
        let push = r.run(["push", "busybox:latest", "busybox:pushed"])
        #expect(push.status == 0, "\(push.stderr)")
        #expect(push.stdout.contains(" to \(m.hostPort)/library/busybox:pushed "), "\(push.stdout)")
        let remote = r.run(["-D", "manifest", "inspect", "busybox:pushed"])
        #expect(remote.status == 0 && remote.stdout.contains("\"schemaVersion\": 2"), "\(remote.stderr)")
        #expect(remote.stderr.contains("> GET \(m.url)/v2/library/busybox/manifests/pushed"), "\(remote.stderr)")
        #expect(lines(r.run(["search", "--list-tags", "busybox"]).stdout).sorted() == ["1.36", "latest", "pushed"])
        #expect(!names(r).contains("busybox:pushed"))

        // A name that spells the registry host is used as written (no library/), as in udocker 1.3.
        let spelled = r.run(["pull", "\(m.hostPort)/busybox:1.36"])
        #expect(spelled.status == 1 && spelled.stderr.contains("manifest busybox:1.36 not found"), "\(spelled.stderr)")
    }

    @Test func theRegistryOptionAndTheConfigurationKeyAreMirrorsToo() throws {
        let m = try mirror()
        defer { m.stop() }
        // UDOCKER_REGISTRY names the shared registry, which has no library/busybox: --registry wins.
        let r = try ImageRepo()
        let opt = "--registry=\(m.url)"
        let pull = r.run(["pull", opt, "busybox:1.36"])
        #expect(pull.status == 0, "\(pull.stderr)")
        #expect(lines(r.run(["search", "--list-tags", opt, "busybox"]).stdout).sorted() == ["1.36", "latest"])
        let inspect = r.run(["manifest", "inspect", opt, "busybox:latest"])
        #expect(inspect.status == 0 && inspect.stdout.contains("\"schemaVersion\": 2"), "\(inspect.stderr)")
        let push = r.run(["push", opt, "busybox:1.36", "busybox:copy"])
        #expect(push.status == 0 && push.stdout.contains(" to \(m.hostPort)/library/busybox:copy "), "\(push.stdout)\(push.stderr)")
        let run = r.run(["run", "--nobanner", "--rm", opt, "busybox:copy", "/bin/sh", "-c", "echo ok"])
        #expect(run.status == 0 && run.stdout.hasSuffix("\nok\n"), "\(run.stdout)\(run.stderr)")

        // dockerio_registry_url in a configuration file (--config).
        let conf = r.tmp + "/udocker.conf"
        try Data("[DEFAULT]\ndockerio_registry_url = \(m.url)\n".utf8).write(to: URL(fileURLWithPath: conf))
        let byConf = runUdocker(["--config=\(conf)", "pull", "busybox:latest"], env: ["UDOCKER_DIR": r.repo])
        #expect(byConf.status == 0, "\(byConf.stderr)")
    }

    @Test func loginAdviceForAnHTTPRegistryWorksWhenFollowed() throws {
        let user = "mirror-user", password = "Mirror-pw-31"
        let m = try mirror(auth: .htpasswd(user: user, password: password), credentials: (user, password))
        defer { m.stop() }
        let r = PushRepo(registry: m.url)

        let anonymous = r.run(["pull", "busybox:1.36"])
        #expect(anonymous.status == 1)
        let advice = "udocker login --registry=\(m.url)"
        #expect(anonymous.stderr == "Error: \(m.hostPort) requires a username and password: run '\(advice)'\n", "\(anonymous.stderr)")

        // The advice as written, with the credentials added.
        let login = r.run(["login", "--username=\(user)", "--password-stdin", "--registry=\(m.url)"], stdin: Array(password.utf8))
        #expect(login.status == 0, "\(login.stderr)")
        let pulled = r.run(["pull", "busybox:1.36"])
        #expect(pulled.status == 0, "\(pulled.stderr)")

        // Without the scheme, https is tried: the error says how to name a plain-HTTP registry.
        let bare = r.run(["login", "--username=\(user)", "--password-stdin", "--registry=\(m.hostPort)"], stdin: Array(password.utf8))
        #expect(bare.status == 1)
        #expect(bare.stderr.contains("answers in plain HTTP, not HTTPS") && bare.stderr.contains("--registry=\(m.url)"), "\(bare.stderr)")
    }
}
