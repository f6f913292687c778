// What the container commands share: opening the repository's containers and the materialisation
// policy from --materialize and udocker.conf.
import Runtime

extension CommandContext {
    /// The repository's containers (and its images, with rmi aware of containers).
    func containers() throws -> ContainerStore {
        let repo = try repository()
        return try ContainerStore(repository: repo, store: try repo.openStore())
    }

    /// --materialize if given, else `materialize` from the configuration; the `auto` split from
    /// `materialize_link_dirs`.
    func materializePolicy(option: String?) throws -> MaterializePolicy {
        let mode: MaterializeMode
        if let option {
            guard let m = MaterializeMode(rawValue: option.lowercased()) else {
                throw UsageError(description: "invalid --materialize value '\(option)': use auto, link or copy")
            }
            mode = m
        } else {
            mode = try configuration.materialize
        }
        return MaterializePolicy(mode: mode, linkDirs: try configuration.materializeLinkDirs)
    }

    /// Notes of a materialisation as warnings, at most `limit` of them and a count of the rest. The
    /// device nodes of the image's /dev only with -D: every Debian image has them, every mode uses
    /// the host's /dev instead, and a batch job creating containers would see them on every create.
    func printNotes(_ report: MaterializeReport, limit: Int = 20) {
        let notes = report.notes
        for n in notes.prefix(limit) { output.warning(n) }
        if notes.count > limit { output.warning("… and \(notes.count - limit) more entries skipped") }
        if !report.devicesNotCreated.isEmpty {
            output.debug("\(report.devicesNotCreated.count) device node(s) of the image's /dev not created (containers use the host's /dev): \(report.devicesNotCreated.joined(separator: " "))")
        }
    }
}
