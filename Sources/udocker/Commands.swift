// The list of udocker commands. To add one: write Sources/udocker/<Noun>/<Verb>.swift with a type
// conforming to UdockerCommand (see Support/UdockerCommand.swift) and add it here.

enum Commands {
    static var all: [any UdockerCommand.Type] {
        [
            Help.self,
            Version.self,
            Completion.self,
            Showconf.self,
            Install.self,
            Info.self,
            Mkrepo.self,
            Pull.self,
            Push.self,
            Create.self,
            Run.self,
            Images.self,
            Ps.self,
            Name.self,
            Rmname.self,
            Rename.self,
            Clone.self,
            Rm.self,
            Rmi.self,
            Tag.self,
            Inspect.self,
            Verify.self,
            Manifest.self,
            Protect.self,
            Unprotect.self,
            Import.self,
            Export.self,
            Load.self,
            Save.self,
            Setup.self,
            StoreGroup.self,
            GC.self,
            Search.self,
            Login.self,
            Logout.self,
            Sync.self,
            SyncServe.self,
        ]
    }

    static func find(_ name: String) -> (any UdockerCommand.Type)? {
        // run first: it is started hundreds of times per job, and each name looked at builds a configuration.
        if name == "run" { return Run.self }
        return all.first { $0.name == name }
    }
}
