// The effective configuration: udocker 1.3's defaults, file order, environment and option precedence.
import Testing
import CAS
@testable import Runtime

@Suite struct ConfigurationTests {
    @Test func defaultsAreUdockers() throws {
        let conf = Configuration(home: "/home/u")
        #expect(conf.entries.prefix(3).map(\.key) == ["verbose_level", "homedir", "topdir"])
        #expect(conf.topdir == "/home/u/.udocker")
        #expect(conf.reposdir == "/home/u/.udocker/repos")
        #expect(conf.keystorePath == "/home/u/.udocker/keystore")
        #expect(try conf.verboseLevel == 3)
        #expect(try conf.httpInsecure == false)
        #expect(conf.registryURL == "https://registry-1.docker.io")
        #expect(conf["use_patchelf_executable"] == "UDOCKER")
        #expect(try conf.list("cmd") == ["bash", "-i"])
        #expect(try conf.list("mountpoint_prefixes") == ["/etc"])
        #expect(conf["docker_registries"] == "{'docker.io': ['https://registry-1.docker.io', 'https://hub.docker.com']}")
        #expect(conf.storedir == nil)
        #expect(try conf.materialize == .auto)
        #expect(conf.tmpdir == "/tmp")
        #expect(Configuration(home: "/h", tmpdir: "/scratch").tmpdir == "/scratch")
    }

    @Test func filesApplyInOrderAndUnknownKeysAreKept() throws {
        let t = TempDir("conf")
        let home = t.path + "/home"
        let system = try t.write("etc/udocker.conf", """
            [DEFAULT]
            verbose_level = 1
            timeout = 20
            http_agent = system
            ctimeout = 9
            """)
        let user = try t.write("home/.udocker/udocker.conf", """
            [DEFAULT]
            timeout = 30
            http_agent = user
            site_key = kept
            """)
        let repoConf = try t.write("repo/udocker.conf", "[DEFAULT]\nhttp_agent = repo\nctimeout = 7\n")
        let explicit = try t.write("explicit.conf", "[DEFAULT]\nctimeout = 5\n")

        let conf = try Configuration.load(
            environment: ["HOME": home, "UDOCKER_DIR": t.path + "/repo"],
            overrides: ConfigOverrides(configFile: explicit),
            systemConfigFile: system)
        #expect(conf.filesRead == [system, user, repoConf, explicit])
        #expect(try conf.verboseLevel == 1)           // only the system file sets it
        #expect(try conf.int("timeout") == 30)        // user file overrides system
        #expect(conf.string("http_agent") == "repo")  // repository file overrides user
        #expect(try conf.int("ctimeout") == 5)        // --config overrides repository
        #expect(conf.source(of: "ctimeout") == .file(explicit, line: 2))
        #expect(conf["site_key"] == "kept")
        #expect(conf.entries.last?.key == "site_key")
    }

    @Test func repositoryFileComesFromRepoOption() throws {
        let t = TempDir("conf")
        try t.write("a/udocker.conf", "[DEFAULT]\nhttp_agent = a\n")
        try t.write("b/udocker.conf", "[DEFAULT]\nhttp_agent = b\n")
        let conf = try Configuration.load(
            environment: ["HOME": t.path + "/home", "UDOCKER_DIR": t.path + "/a"],
            overrides: ConfigOverrides(repo: t.path + "/b"), systemConfigFile: nil)
        #expect(conf.string("http_agent") == "b")
        #expect(conf.topdir == t.path + "/b")
        #expect(conf.source(of: "topdir") == .option("--repo"))
    }

    @Test func environmentOverridesFilesAndOptionsOverrideEnvironment() throws {
        let t = TempDir("conf")
        try t.write("home/.udocker/udocker.conf", """
            [DEFAULT]
            dockerio_registry_url = https://from-file
            topdir = /from/file
            verbose_level = 4
            """)
        let env = [
            "HOME": t.path + "/home",
            "UDOCKER_REGISTRY": "https://from-env",
            "UDOCKER_DIR": "/from/env",
            "UDOCKER_LOGLEVEL": "2",
            "UDOCKER_TMP": "/scratch",
            "UDOCKER_STORE": "/shared/store",
            "UDOCKER_MATERIALIZE": "LINK",
            "UDOCKER_FAKECHROOT_EXPAND_SYMLINKS": "TRUE",
            "UDOCKER_USE_PATCHELF_EXECUTABLE": "/usr/bin/patchelf",
            "UDOCKER_KEYSTORE": "/secure/keystore",
            "UDOCKER_BIN": "",   // empty counts as unset
        ]
        let conf = try Configuration.load(environment: env, systemConfigFile: nil)
        #expect(conf.registryURL == "https://from-env")
        #expect(conf.source(of: "dockerio_registry_url") == .environment("UDOCKER_REGISTRY"))
        #expect(conf.topdir == "/from/env")
        #expect(conf.bindir == "/from/env/bin")
        #expect(try conf.verboseLevel == 2)
        #expect(conf.tmpdir == "/scratch")
        #expect(conf.storedir == "/shared/store")
        #expect(try conf.materialize == .link)
        #expect(conf["fakechroot_expand_symlinks"] == "true")
        #expect(conf.string("use_patchelf_executable") == "/usr/bin/patchelf")
        #expect(conf.keystorePath == "/secure/keystore")

        let withOptions = try Configuration.load(
            environment: env,
            overrides: ConfigOverrides(repo: "/from/option", debug: true, insecure: true),
            systemConfigFile: nil)
        #expect(withOptions.topdir == "/from/option")
        #expect(try withOptions.verboseLevel == 5)
        #expect(try withOptions.httpInsecure == true)
        let quiet = try Configuration.load(environment: env, overrides: ConfigOverrides(quiet: true),
                                           systemConfigFile: nil)
        #expect(try quiet.verboseLevel == 1)
    }

    @Test func noSysconfSkipsTheSystemFile() throws {
        let t = TempDir("conf")
        let system = try t.write("etc/udocker.conf", "[DEFAULT]\nhttp_agent = system\n")
        let conf = try Configuration.load(environment: ["HOME": t.path, "UDOCKER_NOSYSCONF": "1"],
                                          systemConfigFile: system)
        #expect(conf.string("http_agent") == nil)
        #expect(conf.filesRead.isEmpty)
    }

    @Test func errorsNameTheCulprit() throws {
        let t = TempDir("conf")
        let user = try t.write("home/.udocker/udocker.conf", "[DEFAULT]\nverbose_level = 3\nnonsense\n")
        #expect(throws: RuntimeError.configSyntax(file: user, line: 3, message: "expected 'key = value', found 'nonsense'")) {
            try Configuration.load(environment: ["HOME": t.path + "/home"], systemConfigFile: nil)
        }
        #expect(throws: RuntimeError.configFileMissing(t.path + "/none.conf")) {
            try Configuration.load(environment: ["HOME": t.path],
                                   overrides: ConfigOverrides(configFile: t.path + "/none.conf"),
                                   systemConfigFile: nil)
        }
        #expect(throws: RuntimeError.self) {
            try Configuration.load(environment: ["HOME": t.path, "UDOCKER_LOGLEVEL": "loud"], systemConfigFile: nil)
        }
        let bad = try t.write("bad.conf", "[DEFAULT]\nmaterialize = sometimes\nhttp_insecure = maybe\n")
        let conf = try Configuration.load(environment: ["HOME": t.path],
                                          overrides: ConfigOverrides(configFile: bad), systemConfigFile: nil)
        #expect(throws: RuntimeError.badConfigValue(key: "materialize", value: "sometimes",
                                                    expected: "auto, link or copy", source: "\(bad) line 2")) {
            try conf.materialize
        }
        #expect(throws: RuntimeError.self) { try conf.httpInsecure }
    }

    @Test func typedValuesAcceptUdockerAndPlainForms() throws {
        var conf = Configuration(home: "/h")
        conf.set("sysdirs_list", "/dev /proc, /sys", source: .builtin)
        #expect(try conf.list("sysdirs_list") == ["/dev", "/proc", "/sys"])
        conf.set("cmd", "(\"bash\", '-l')", source: .builtin)
        #expect(try conf.list("cmd") == ["bash", "-l"])
        conf.set("cmd", "['bash', '-l'", source: .builtin)
        #expect(throws: RuntimeError.self) { try conf.list("cmd") }
        conf.set("dockerio_registry_url", "\"https://quoted\"", source: .builtin)
        #expect(conf.registryURL == "https://quoted")
        conf.set("http_insecure", "yes", source: .builtin)
        #expect(try conf.httpInsecure == true)
        conf.set("fakechroot_so", "None", source: .builtin)
        #expect(conf.string("fakechroot_so") == nil)
    }
}
