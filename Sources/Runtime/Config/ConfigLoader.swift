// Builds the effective configuration in udocker 1.3's order: built-in defaults, /etc/udocker.conf,
// $HOME/.udocker/udocker.conf, the repository's udocker.conf, --config=FILE, UDOCKER_* variables,
// then the general command line options (-D, -q, --insecure, --repo).
#if canImport(Glibc)
import Glibc
#endif
import CAS

/// The general command line options that change the configuration.
public struct ConfigOverrides: Sendable, Equatable {
    /// --config=FILE: read after the other files; must exist.
    public var configFile: String?
    /// --repo=DIR: the repository directory, overriding UDOCKER_DIR and the files.
    public var repo: String?
    /// -D/--debug: verbose_level 5.
    public var debug: Bool
    /// -q/--quiet: verbose_level 1.
    public var quiet: Bool
    /// --insecure: http_insecure True.
    public var insecure: Bool

    public init(configFile: String? = nil, repo: String? = nil, debug: Bool = false,
                quiet: Bool = false, insecure: Bool = false) {
        self.configFile = configFile
        self.repo = repo
        self.debug = debug
        self.quiet = quiet
        self.insecure = insecure
    }
}

extension Configuration {
    /// Loads the configuration.
    ///
    /// - Parameters:
    ///   - environment: the process environment (HOME, TMPDIR and UDOCKER_* are used).
    ///   - overrides: the general command line options.
    ///   - systemConfigFile: the system-wide file, /etc/udocker.conf; nil skips it (tests).
    ///     UDOCKER_NOSYSCONF set to a non-empty value also skips it.
    ///
    /// The repository's udocker.conf is REPO/udocker.conf for the repository that --repo,
    /// UDOCKER_DIR or the other files select, read only when REPO is not $HOME/.udocker.
    /// Missing implicit files are skipped, as udocker does; a missing --config file is an error.
    public static func load(environment: [String: String],
                            overrides: ConfigOverrides = ConfigOverrides(),
                            systemConfigFile: String? = ConfigDefaults.systemConfigFile) throws -> Configuration {
        let home = Paths.home(environment: environment)
        var conf = Configuration(home: home, tmpdir: environment["TMPDIR"])

        var system: ConfigFile? = nil
        if let path = systemConfigFile, (environment[ConfigDefaults.noSystemConfigVariable] ?? "").isEmpty {
            system = try readIfPresent(path)
        }
        let user = try readIfPresent(conf.homedir + "/" + ConfigDefaults.configFileName)
        var explicit: ConfigFile? = nil
        if let path = overrides.configFile {
            guard FileIO.exists(path) else { throw RuntimeError.configFileMissing(path) }
            explicit = try read(path)
        }

        // Which repository do the files, the environment and --repo select?
        var probe = conf
        for file in [system, user, explicit].compactMap({ $0 }) { probe.apply(file) }
        let repoDir = overrides.repo ?? nonEmpty(environment["UDOCKER_DIR"]) ?? probe.topdir
        var repository: ConfigFile? = nil
        if Paths.absolute(repoDir) != Paths.absolute(conf.homedir) {
            repository = try readIfPresent(repoDir + "/" + ConfigDefaults.configFileName)
        }

        for file in [system, user, repository, explicit].compactMap({ $0 }) {
            conf.apply(file)
            conf.filesRead.append(file.path)
        }
        try conf.applyEnvironment(environment)
        conf.apply(overrides)
        return conf
    }

    mutating func apply(_ file: ConfigFile) {
        for e in file.entries {
            set(e.key, e.value, source: .file(file.path, line: e.line))
        }
    }

    mutating func applyEnvironment(_ environment: [String: String]) throws {
        for (variable, key) in ConfigDefaults.environmentVariables {
            // An empty variable counts as unset: UDOCKER_DIR= must not move the repository to /.
            guard let raw = nonEmpty(environment[variable]) else { continue }
            var value = raw
            switch variable {
            case "UDOCKER_LOGLEVEL":
                guard Int(raw) != nil else {
                    throw RuntimeError.badEnvironment(variable: variable, value: raw,
                                                      expected: "a number from 0 (errors only) to 5 (debug)")
                }
            case "UDOCKER_FAKECHROOT_EXPAND_SYMLINKS":
                value = raw.lowercased()
            case "UDOCKER_MATERIALIZE":
                guard MaterializeMode(rawValue: raw.lowercased()) != nil else {
                    throw RuntimeError.badEnvironment(variable: variable, value: raw, expected: "auto, link or copy")
                }
                value = raw.lowercased()
            default:
                break
            }
            set(key, value, source: .environment(variable))
        }
    }

    mutating func apply(_ overrides: ConfigOverrides) {
        if overrides.debug {
            set("verbose_level", "5", source: .option("--debug"))
        } else if overrides.quiet {
            set("verbose_level", "1", source: .option("--quiet"))
        }
        if overrides.insecure {
            set("http_insecure", "True", source: .option("--insecure"))
        }
        if let repo = overrides.repo {
            set("topdir", repo, source: .option("--repo"))
        }
    }

    private static func readIfPresent(_ path: String) throws -> ConfigFile? {
        guard FileIO.exists(path) else { return nil }
        // udocker (ConfigParser.read) skips files it cannot read; so do we, but not malformed ones.
        guard let bytes = try? FileIO.readFile(path) else { return nil }
        return try ConfigFile.parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    private static func read(_ path: String) throws -> ConfigFile {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.readFile(path)
        } catch CASError.io(let op, let p, let err) {
            throw RuntimeError.io(op, p, err)
        }
        return try ConfigFile.parse(String(decoding: bytes, as: UTF8.self), path: path)
    }
}

func nonEmpty(_ s: String?) -> String? {
    guard let s, !s.isEmpty else { return nil }
    return s
}
