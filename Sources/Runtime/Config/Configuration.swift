// The effective udocker configuration: every key udocker 1.3 knows plus unknown keys from files,
// with where each value came from, and typed accessors for the keys this implementation uses.

/// How container trees are built from unpacked layers (see the design brief).
public enum MaterializeMode: String, Sendable, CaseIterable {
    case auto, link, copy
}

public struct Configuration: Sendable {
    /// Where a value was set; later sources override earlier ones in this order.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case builtin
        case file(String, line: Int)
        case environment(String)
        case option(String)

        public var description: String {
            switch self {
            case .builtin: return "the built-in default"
            case .file(let path, let line): return "\(path) line \(line)"
            case .environment(let name): return "environment variable \(name)"
            case .option(let name): return "command line option \(name)"
            }
        }
    }

    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: String
        public let source: Source
    }

    /// All entries: udocker's keys in udocker's order, then keys first set by files or by us.
    public private(set) var entries: [Entry] = []
    private var position: [String: Int] = [:]
    /// The configuration files that were read, in the order they were applied.
    public internal(set) var filesRead: [String] = []

    /// The built-in configuration for a user whose home is `home`.
    public init(home: String, tmpdir: String? = nil) {
        for (key, value) in ConfigDefaults.entries(home: home, tmpdir: tmpdir) {
            set(key, value, source: .builtin)
        }
    }

    public subscript(key: String) -> String? {
        guard let i = position[key.lowercased()] else { return nil }
        return entries[i].value
    }

    public func source(of key: String) -> Source? {
        guard let i = position[key.lowercased()] else { return nil }
        return entries[i].source
    }

    /// Whether the key was set by a file, the environment or an option rather than left at its default.
    public func isSet(_ key: String) -> Bool {
        guard let s = source(of: key) else { return false }
        return s != .builtin
    }

    public mutating func set(_ key: String, _ value: String, source: Source) {
        let k = key.lowercased()
        let entry = Entry(key: k, value: value, source: source)
        if let i = position[k] {
            entries[i] = entry
        } else {
            position[k] = entries.count
            entries.append(entry)
        }
    }

    // MARK: Typed access. Throwing accessors name the key, the bad value and where it came from.

    /// The value as a string; nil when unset (missing, empty or None). Surrounding quotes are removed.
    public func string(_ key: String) -> String? {
        guard let v = self[key], !ConfigValue.isUnset(v) else { return nil }
        return ConfigValue.unquoted(v)
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = self[key], !ConfigValue.isUnset(v) else { return nil }
        guard let b = ConfigValue.bool(v) else { throw bad(key, v, "True or False") }
        return b
    }

    public func int(_ key: String) throws -> Int? {
        guard let v = self[key], !ConfigValue.isUnset(v) else { return nil }
        guard let n = Int(ConfigValue.unquoted(v)) else { throw bad(key, v, "a whole number") }
        return n
    }

    /// A list of strings: a Python list/tuple literal, or words separated by spaces or commas.
    public func list(_ key: String) throws -> [String] {
        guard let v = self[key] else { return [] }
        guard let l = ConfigValue.list(v) else {
            throw bad(key, v, "a list such as ['a', 'b'] or words separated by spaces")
        }
        return l
    }

    private func bad(_ key: String, _ value: String, _ expected: String) -> RuntimeError {
        .badConfigValue(key: key, value: value, expected: expected,
                        source: source(of: key)?.description ?? "nowhere")
    }

    // MARK: Keys this implementation uses.

    /// The user's udocker directory, $HOME/.udocker: keystore and user udocker.conf live there.
    public var homedir: String { string("homedir") ?? "/.udocker" }
    /// The repository directory (udocker's topdir): UDOCKER_DIR, --repo, or homedir.
    public var topdir: String { string("topdir") ?? homedir }
    public var bindir: String { string("bindir") ?? topdir + "/bin" }
    public var libdir: String { string("libdir") ?? topdir + "/lib" }
    public var docdir: String { string("docdir") ?? topdir + "/doc" }
    public var reposdir: String { string("reposdir") ?? topdir + "/repos" }
    public var layersdir: String { string("layersdir") ?? topdir + "/layers" }
    public var containersdir: String { string("containersdir") ?? topdir + "/containers" }
    /// Directory for temporary files (UDOCKER_TMP, else TMPDIR, else /tmp).
    public var tmpdir: String { string("tmpdir") ?? "/tmp" }
    /// The credentials keystore; a relative name is inside homedir, as in udocker 1.3.
    public var keystorePath: String {
        let k = string("keystore") ?? "keystore"
        return k.hasPrefix("/") ? k : homedir + "/" + k
    }
    /// The content store named by `storedir` / UDOCKER_STORE, if any. A relative path is taken
    /// relative to the repository directory. Used when a repository is created; an existing
    /// repository keeps the store recorded in it (see Repository).
    public var storedir: String? { string("storedir") }
    public var materialize: MaterializeMode {
        get throws {
            guard let v = string("materialize") else { return .auto }
            guard let m = MaterializeMode(rawValue: v.lowercased()) else {
                throw bad("materialize", v, "auto, link or copy")
            }
            return m
        }
    }
    /// The container paths whose files `auto` links to the store (`materialize_link_dirs`): absolute
    /// paths without "..", e.g. ('/usr', '/opt') or "/usr,/opt".
    public var materializeLinkDirs: [String] {
        get throws {
            guard isSet("materialize_link_dirs") || self["materialize_link_dirs"] != nil else {
                return MaterializePolicy.defaultLinkDirs
            }
            let dirs = try list("materialize_link_dirs")
            for d in dirs where !d.hasPrefix("/") || d.split(separator: "/").contains("..") {
                throw bad("materialize_link_dirs", self["materialize_link_dirs"] ?? d,
                          "absolute container paths such as /usr,/opt (no '..')")
            }
            return dirs
        }
    }
    /// udocker's message level: 0 errors only ... 3 info (default) ... 5 debug.
    public var verboseLevel: Int {
        get throws { try int("verbose_level") ?? 3 }
    }
    public var httpInsecure: Bool {
        get throws { try bool("http_insecure") ?? false }
    }
    /// Layers a pull downloads (and unpacks) at once: `pull_parallel`, 1 to 16, default 3.
    public var pullParallel: Int {
        get throws {
            let n = try int("pull_parallel") ?? 3
            guard (1...16).contains(n) else { throw bad("pull_parallel", String(n), "a whole number from 1 to 16") }
            return n
        }
    }
    /// A whole number of `key` from `range`, `fallback` when unset. udocker's timeouts may be written
    /// with a fraction ("12.0"); it is rounded up so a limit never becomes 0 (no limit for libcurl).
    private func limit(_ key: String, _ fallback: Int, _ range: ClosedRange<Int>, _ unit: String) throws -> Int {
        guard let v = string(key), !v.isEmpty else { return fallback }
        guard let d = Double(v), d.isFinite, let n = Int(exactly: d.rounded(.up)), range.contains(n) else {
            throw bad(key, v, "a number of \(unit) from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }
    /// How long a request may take: `timeout` (an answer read into memory, headers included),
    /// `download_timeout` (one blob transfer) and `ctimeout` (connecting), in seconds, as in udocker 1.3.
    public var timeout: Int { get throws { try limit("timeout", 12, 1...86400, "seconds") } }
    public var downloadTimeout: Int { get throws { try limit("download_timeout", 1800, 1...604800, "seconds") } }
    public var connectTimeout: Int { get throws { try limit("ctimeout", 6, 1...3600, "seconds") } }
    /// A blob transfer slower than `download_low_speed_limit` bytes/s for `download_low_speed_time` s stops.
    public var downloadLowSpeedLimit: Int { get throws { try limit("download_low_speed_limit", 1000, 1...(1 << 30), "bytes per second") } }
    public var downloadLowSpeedTime: Int { get throws { try limit("download_low_speed_time", 60, 1...86400, "seconds") } }
    /// The most bytes read of a manifest, index, image config or token answer.
    public var maxDocumentSize: Int { get throws { try limit("max_document_size", 8 << 20, 1024...(1 << 30), "bytes") } }
    /// How many times its blob's size a layer may unpack to (at least 256 MiB).
    public var maxLayerExpansion: UInt64 { get throws { UInt64(try limit("max_layer_expansion", 200, 1...1_000_000, "times")) } }
    /// The registry for names without a host, when set (--registry is applied by the caller;
    /// this is dockerio_registry_url from udocker.conf or UDOCKER_REGISTRY); nil means Docker Hub.
    public var registryOverride: String? { isSet("dockerio_registry_url") ? string("dockerio_registry_url") : nil }
    /// udocker.conf `http_proxy`: the proxy for registry traffic when --httpproxy is not given.
    public var httpProxy: String? { string("http_proxy") }
    public var registryURL: String { string("dockerio_registry_url") ?? "https://registry-1.docker.io" }
    public var indexURL: String { string("dockerio_index_url") ?? "https://hub.docker.com" }
    /// Where `udocker install` gets the tools bundle: URLs or files separated by spaces.
    public var tarball: String { string("tarball") ?? "" }
    public var tarballRelease: String { string("tarball_release") ?? "" }
}
