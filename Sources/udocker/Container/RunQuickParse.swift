// `run`'s usual command line parsed without swift-argument-parser, whose first parse in a process
// reflects every declared property (about 2 ms, a fifth of a run's own time); run starts batch jobs.
extension Run {
    /// The options declared in Run, by every name they have: the property's key and whether it takes
    /// a value. CommandLineTests checks that every option swift-argument-parser knows is here.
    static let quickOptions: [String: (key: String, takesValue: Bool)] = {
        var t: [String: (key: String, takesValue: Bool)] = [:]
        for (names, key) in [(["-w", "--workdir"], "workdir"), (["-u", "--user"], "user"), (["-v", "--volume"], "volume"),
                             (["--novol"], "novol"), (["-e", "--env"], "env"), (["--env-file"], "env-file"),
                             (["--cpuset-cpus"], "cpuset-cpus"), (["--name"], "name"), (["--kernel"], "kernel"),
                             (["--device"], "device"), (["--location"], "location"), (["--entrypoint"], "entrypoint"),
                             (["--platform"], "platform"), (["--pull"], "pull"), (["--httpproxy"], "httpproxy"),
                             (["--registry"], "registry"), (["--index"], "index"), (["-p", "--publish"], "publish"),
                             (["--materialize"], "materialize"), (["--volumes-from"], "volumes-from"),
                             (["--dns"], "dns"), (["--dns-search"], "dns-search")] {
            for n in names { t[n] = (key, true) }
        }
        for (names, key) in [(["--rm"], "rm"), (["--hostauth"], "hostauth"), (["--containerauth"], "containerauth"),
                             (["--nosysdirs"], "nosysdirs"), (["--nometa"], "nometa"), (["--dri"], "dri"),
                             (["--hostenv"], "hostenv"), (["--bindhome"], "bindhome"), (["--nobanner"], "nobanner"),
                             (["-P", "--publish-all", "--netcoop"], "publish-all"), (["-i"], "i"), (["-t"], "t"), (["-a"], "a")] {
            for n in names { t[n] = (key, false) }
        }
        return t
    }()

    /// The options that may be given more than once (arrays).
    static let repeatingOptions: Set<String> = ["volume", "novol", "env", "env-file", "device", "publish",
                                                "volumes-from", "dns", "dns-search"]

    /// `args` parsed when they are options from `quickOptions` (`--name=value`, `--name value`,
    /// `-v value`, flags) up to the container, then its command; nil for anything else (help, an
    /// unknown or combined option, a value that looks like an option, an option given twice), which
    /// swift-argument-parser then parses to the same result or explains.
    static func quickParse(_ args: [String]) -> (any CommandBody)? {
        var values: [String: [String]] = [:]
        var i = 0
        var target: String? = nil
        while i < args.count {
            let a = args[i]
            i += 1
            guard a.hasPrefix("-") && a.count > 1 else {
                if a == "-" { return nil }
                target = a
                break
            }
            let name: String, inline: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq])
                inline = String(a[a.index(after: eq)...])
            } else {
                name = a
                inline = nil
            }
            guard let option = quickOptions[name] else { return nil }
            let value: String
            if !option.takesValue {
                guard inline == nil else { return nil }
                value = ""
            } else if let inline {
                value = inline
            } else {
                guard i < args.count else { return nil }
                value = args[i]
                i += 1
                // swift-argument-parser refuses a value that looks like an option: let it say so.
                if value.hasPrefix("-") { return nil }
            }
            // --entrypoint= (no entrypoint) is the one empty value with a meaning here.
            if value.isEmpty && option.takesValue && option.key != "entrypoint" { return nil }
            if values[option.key] != nil && !repeatingOptions.contains(option.key) { return nil }
            values[option.key, default: []].append(value)
        }
        let command = target == nil ? [] : Array(args[i...])

        var r = RunRequest()
        func one(_ key: String) -> String? { values[key]?.last }
        func all(_ key: String) -> [String] { values[key] ?? [] }
        func flag(_ key: String) -> Bool { values[key] != nil }
        r.remove = flag("rm")
        r.workdir = one("workdir")
        r.user = one("user")
        r.volumes = all("volume")
        r.novolumes = all("novol")
        r.env = all("env")
        r.envFiles = all("env-file")
        r.hostAuth = flag("hostauth")
        r.containerAuth = flag("containerauth")
        r.noSysdirs = flag("nosysdirs")
        r.noMeta = flag("nometa")
        r.dri = flag("dri")
        r.hostEnv = flag("hostenv")
        r.cpuset = one("cpuset-cpus")
        r.name = one("name")
        r.bindHome = flag("bindhome")
        r.kernel = one("kernel")
        r.devices = all("device")
        r.location = one("location")
        r.noBanner = flag("nobanner")
        r.entrypoint = one("entrypoint").map { $0.isEmpty ? noEntrypoint : $0 }
        r.platform = one("platform")
        r.pull = one("pull")
        r.httpProxy = one("httpproxy")
        r.registry = one("registry")
        r.index = one("index")
        r.publish = all("publish")
        r.publishAll = flag("publish-all")
        r.materialize = one("materialize")
        r.ignored = ["volumes-from", "dns", "dns-search"].filter { values[$0] != nil }.map { "--" + $0 }
        r.target = target
        r.command = command
        return r
    }
}
