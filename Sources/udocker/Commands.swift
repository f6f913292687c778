// The list of udocker commands. To add one: write Sources/udocker/<Noun>/<Verb>.swift with a type
// conforming to UdockerCommand (see Support/UdockerCommand.swift) and add it here.

enum Commands {
    static var all: [any UdockerCommand.Type] {
        [
            Help.self,
            Version.self,
            Showconf.self,
            Mkrepo.self,
            Pull.self,
            Push.self,
            Images.self,
            Inspect.self,
            Manifest.self,
            Tag.self,
            Rmi.self,
            Verify.self,
            Protect.self,
            Unprotect.self,
            Import.self,
            Export.self,
            Load.self,
            Save.self,
            StoreGroup.self,
            Search.self,
            Login.self,
            Logout.self,
        ]
    }

    static func find(_ name: String) -> (any UdockerCommand.Type)? {
        all.first { $0.name == name }
    }
}
