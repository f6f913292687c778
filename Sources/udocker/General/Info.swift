// udocker info [--json] (beyond udocker 1.3): the engines found, the host facts they depend on,
// which execution modes work here (and why the others do not), and the repository's paths.
import ArgumentParser
import Foundation
import CAS
import Runtime

struct Info: UdockerCommand {
    static let configuration = CommandConfiguration(commandName: "info")

    static let helpText = """
        info: show engines, host facts and usable execution modes
        info [options]
        --json                  :print the information as JSON

        Shows for each engine program (proot, runc, crun, patchelf,
        libfakechroot, apptainer/singularity) where it was found and
        its origin: setting (UDOCKER_USE_*_EXECUTABLE or udocker.conf),
        repository (the repository's bin/ and lib/) or host (PATH),
        and its version. Then the kernel, the cgroup layout and user
        namespaces, every execution mode with the reason why it cannot
        run here, the default mode and the repository directories.
        """
    static var helpLines: [HelpLine] {
        [HelpLine(usage: "info", text: "Show engines, host and usable modes")]
    }
    static var helpGroup: HelpGroup { .general }

    @Flag(name: .customLong("json")) var json = false

    mutating func execute(_ context: CommandContext) throws -> Int32 {
        // JSON goes to programs: no "creating repo" line before it.
        let repo = json ? try Repository.openOrCreate(context.configuration).repository : try context.repository()
        let runner = ContainerRun(repository: repo, configuration: context.configuration,
                                  environment: context.environment, debug: context.output.level >= Output.debug)
        let survey = HostSurvey.gather(context: runner.context)
        let protection = StoreProtection.probe(storeDir: repo.storeDir, environment: context.environment)
        if json {
            context.output.out(try jsonText(survey, repo, protection))
        } else {
            for line in text(survey, repo, protection) { context.output.out(line) }
        }
        return 0
    }

    private func text(_ s: HostSurvey, _ repo: Repository, _ protection: StoreProtection) -> [String] {
        var lines = ["Engines:"]
        let width = max(12, (s.engines.map(\.name.count).max() ?? 0) + 2)
        for e in s.engines {
            let name = "  " + e.name.padding(toLength: width, withPad: " ", startingAt: 0)
            if let t = e.located {
                lines.append(name + t.path + " (\(t.origin.rawValue))" + (e.version.map { " version " + $0 } ?? ""))
            } else if let err = e.error {
                lines.append(name + "error: " + err)
            } else {
                lines.append(name + "not found")
            }
        }
        lines += ["Host:",
                  "  kernel: \(s.kernel)",
                  "  architecture: \(s.architecture)",
                  "  cgroup layout: \(s.cgroupLayout.rawValue)",
                  "  user namespaces: " + (s.userNamespaceProblem.map { "unavailable: " + $0 } ?? "available")]
        let usable = s.modes.filter { $0.problem == nil }.map(\.mode.rawValue)
        lines.append("Execution modes (usable: \(usable.isEmpty ? "none" : usable.joined(separator: " "))):")
        for m in s.modes {
            if let p = m.problem {
                lines.append("  \(m.mode.rawValue)  unusable: \(p)")
            } else {
                lines.append("  \(m.mode.rawValue)  usable: \(m.mode.summary)")
            }
        }
        let defaultProblem = s.modes.first { $0.mode == s.defaultMode }?.problem
        lines.append("Default mode: \(s.defaultMode.rawValue)" + (defaultProblem.map { " (unusable here: \($0))" } ?? ""))
        lines += ["Repository:",
                  "  topdir: \(repo.topdir)",
                  "  containers: \(repo.containersdir)",
                  "  images: \(repo.reposdir)",
                  "  store: \(repo.storeDir)",
                  "  store protection: " + protection.summary,
                  "  bin: \(repo.bindir)",
                  "  lib: \(repo.libdir)"]
        return lines
    }

    private func protectionJSON(_ p: StoreProtection) -> [String: Any] {
        switch p {
        case .sealed(let o):
            return ["mode": "sealed", "subuid": Int(o.subuid), "subgid": Int(o.subgid)]
        case .detectOnly(let reason):
            return ["mode": "detect", "reason": reason]
        }
    }

    private func jsonText(_ s: HostSurvey, _ repo: Repository, _ protection: StoreProtection) throws -> String {
        let engines: [[String: Any]] = s.engines.map { e in
            var d: [String: Any] = ["tool": e.tool.rawValue, "name": e.name, "found": e.located != nil]
            if let t = e.located { d["path"] = t.path; d["origin"] = t.origin.rawValue }
            if let v = e.version { d["version"] = v }
            if let err = e.error { d["error"] = err }
            return d
        }
        let modes: [[String: Any]] = s.modes.map { m in
            var d: [String: Any] = ["mode": m.mode.rawValue, "usable": m.problem == nil, "description": m.mode.summary]
            if let p = m.problem { d["problem"] = p }
            return d
        }
        var host: [String: Any] = ["kernel": s.kernel, "architecture": s.architecture,
                                   "cgroup_layout": s.cgroupLayout.rawValue,
                                   "user_namespaces": s.userNamespaceProblem == nil]
        if let p = s.userNamespaceProblem { host["user_namespaces_problem"] = p }
        let root: [String: Any] = [
            "engines": engines, "host": host, "modes": modes, "default_mode": s.defaultMode.rawValue,
            "repository": ["topdir": repo.topdir, "containers": repo.containersdir, "images": repo.reposdir,
                           "store": repo.storeDir, "bin": repo.bindir, "lib": repo.libdir,
                           "store_protection": protectionJSON(protection)],
        ]
        let data = try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
        return JSONPrint.udockerStyle(Array(data)) ?? String(decoding: data, as: UTF8.self)
    }
}
