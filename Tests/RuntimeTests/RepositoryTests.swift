// Repository creation and opening: udocker's layout, the content store, and sharing a store.
import Testing
import CAS
@testable import Runtime

@Suite struct RepositoryTests {
    @Test func pathsAreNormalized() {
        let cases = ["/": "/", "/a/b": "/a/b", "/a//b": "/a/b", "/a/./b": "/a/b", "/a/b/": "/a/b", "//": "/", "/.": "/",
                     "/a/.": "/a", "/a/..": "/a/..", "/.a/b.": "/.a/b.", "a/b": "a/b", "./a": "a", "": ".", ".": ".", "a//": "a"]
        for (path, normal) in cases { #expect(Paths.normalize(path) == normal, "\(path)") }
    }

    @Test func textSearchWithoutFoundation() {
        #expect("--port --netcoop".containsText("--netcoop") && !"--por".containsText("--port") && "x".containsText(""))
        #expect("libc.so.6 => /lib/libc.so.6 (0x1)".byteOffset(of: " => ") == 9 && "é => x".byteOffset(of: " => ") == 2)
        #expect(HostProgram.parse("\tlibc.so.6 => /lib/x/libc.so.6 (0x7f)\n\t/lib64/ld.so (0x1)\n libtalloc.so.2 =>  /lib/t.so \n")
                    .map { "\($0.0) \($0.1)" } == ["libc.so.6 /lib/x/libc.so.6", "libtalloc.so.2 /lib/t.so"])
    }

    @Test func createMakesUdockerLayoutAndStore() throws {
        let t = TempDir("repo")
        let dir = t.path + "/myrepo"
        let created = try Repository.create(at: dir)
        let repo = created.repository

        for sub in ["repos", "layers", "containers", "bin", "lib", "doc"] {
            #expect(FileIO.isDirectory(dir + "/" + sub), "missing \(sub)")
        }
        #expect(Repository.isRepository(at: dir))
        #expect(repo.storeDir == dir + "/store")
        let layout = StoreLayout(root: dir + "/store")
        for d in [layout.blobsDir, layout.layersDir, layout.refsDir, layout.repositoriesDir, layout.tmpDir, layout.locksDir] {
            #expect(FileIO.isDirectory(d), "missing \(d)")
        }
        let storeJSON = try t.read(layout.storeFile)
        #expect(storeJSON.hasPrefix("{\"format\":1,\"id\":\""))
        let id = try #require(repo.id)
        #expect(try t.read(dir + "/repo.json") == "{\"format\":1,\"id\":\"\(id)\"}")
        #expect(try t.read(dir + "/store.path") == dir + "/store\n")
        #expect(try t.read(layout.repositoriesDir + "/" + id) == dir + "\n")
        #expect(created.actions == [.createdRepository(dir), .createdStore(dir + "/store"),
                                    .registered(id: id, store: dir + "/store")])

        // Again: nothing changes, and it says so.
        let again = try Repository.create(at: dir)
        #expect(again.repository == repo)
        #expect(again.actions == [.repositoryExists(dir), .usingStore(dir + "/store"),
                                  .alreadyRegistered(id: id, store: dir + "/store")])
        #expect(try t.read(layout.storeFile) == storeJSON)
    }

    @Test func twoRepositoriesShareOneStore() throws {
        let t = TempDir("repo")
        let store = t.path + "/shared-store"
        let a = try Repository.create(at: t.path + "/a", storeDir: store)
        let storeJSON = try t.read(store + "/store.json")
        let b = try Repository.create(at: t.path + "/b", storeDir: store)
        #expect(a.actions[1] == .createdStore(store))
        #expect(b.actions[1] == .usingStore(store))
        #expect(try t.read(store + "/store.json") == storeJSON)   // written once, never replaced
        #expect(!FileIO.exists(t.path + "/a/store"))
        let aID = try #require(a.repository.id)
        let bID = try #require(b.repository.id)
        #expect(aID != bID)
        let regs = try StoreRegistry.registrations(storeDir: store)
        #expect(Set(regs.map(\.id)) == [aID, bID])
        #expect(Set(regs.map(\.path)) == [t.path + "/a", t.path + "/b"])
    }

    @Test func existingRepositoryKeepsItsStore() throws {
        let t = TempDir("repo")
        try Repository.create(at: t.path + "/r", storeDir: t.path + "/s1")
        #expect(throws: RuntimeError.storeMismatch(repository: t.path + "/r", recorded: t.path + "/s1",
                                                   requested: t.path + "/s2")) {
            try Repository.create(at: t.path + "/r", storeDir: t.path + "/s2")
        }
        #expect(!FileIO.exists(t.path + "/s2"))
        // A configured default store does not move an existing repository.
        let again = try Repository.create(at: t.path + "/r", configuredStoreDir: t.path + "/s3")
        #expect(again.repository.storeDir == t.path + "/s1")
    }

    @Test func refusesDirectoriesThatHoldOtherThings() throws {
        let t = TempDir("repo")
        try t.write("notempty/thesis.tex", "x")
        #expect(throws: RuntimeError.notEmptyForRepository(t.path + "/notempty")) {
            try Repository.create(at: t.path + "/notempty")
        }
        try t.write("busy/data.csv", "x")
        #expect(throws: RuntimeError.notEmptyForStore(t.path + "/busy")) {
            try Repository.create(at: t.path + "/r", storeDir: t.path + "/busy")
        }
        #expect(!FileIO.exists(t.path + "/r"))   // nothing was created
        try t.write("file", "x")
        #expect(throws: RuntimeError.notADirectory(t.path + "/file")) {
            try Repository.create(at: t.path + "/file")
        }
        try t.write("newer/store.json", "{\"format\":7,\"id\":\"x\"}")
        #expect(throws: RuntimeError.unsupportedStoreFormat(path: t.path + "/newer", version: 7)) {
            try Repository.create(at: t.path + "/r2", storeDir: t.path + "/newer")
        }
    }

    @Test func openFindsTheConfiguredRepository() throws {
        let t = TempDir("repo")
        let created = try Repository.create(at: t.path + "/r", storeDir: t.path + "/s")
        let conf = try Configuration.load(environment: ["HOME": t.path + "/home", "UDOCKER_DIR": t.path + "/r"],
                                          systemConfigFile: nil)
        let repo = try Repository.open(conf)
        #expect(repo == created.repository)
        #expect(repo.storeRecorded)

        let missing = try Configuration.load(environment: ["HOME": t.path + "/home"],
                                             overrides: ConfigOverrides(repo: t.path + "/nothing"),
                                             systemConfigFile: nil)
        #expect(throws: RuntimeError.notARepository(t.path + "/nothing")) { try Repository.open(missing) }
        // --repo must name an existing repository; it is not created.
        #expect(throws: RuntimeError.notARepository(t.path + "/nothing")) { try Repository.openOrCreate(missing) }
        #expect(!FileIO.exists(t.path + "/nothing"))
    }

    @Test func defaultRepositoryIsCreatedOnFirstUse() throws {
        let t = TempDir("repo")
        let conf = try Configuration.load(environment: ["HOME": t.path, "UDOCKER_STORE": "shared"],
                                          systemConfigFile: nil)
        let (repo, actions) = try Repository.openOrCreate(conf)
        #expect(repo.topdir == t.path + "/.udocker")
        #expect(repo.storeDir == t.path + "/.udocker/shared")   // relative storedir: inside the repository
        #expect(actions.first == .createdRepository(t.path + "/.udocker"))
        let (again, none) = try Repository.openOrCreate(conf)
        #expect(again == repo)
        #expect(none.isEmpty)
    }

    @Test func opensARepositoryMadeByUdocker13() throws {
        let t = TempDir("repo")
        for sub in ["repos", "layers", "containers", "bin", "lib"] {
            try FileIO.mkdirs(t.path + "/old/" + sub)
        }
        let conf = try Configuration.load(environment: ["HOME": t.path],
                                          overrides: ConfigOverrides(repo: t.path + "/old"), systemConfigFile: nil)
        let repo = try Repository.open(conf)
        #expect(repo.id == nil)
        #expect(!repo.storeRecorded)
        #expect(repo.storeDir == t.path + "/old/store")
        #expect(!FileIO.exists(t.path + "/old/store"))   // opening writes nothing
        // mkrepo on it adds what is missing.
        let upgraded = try Repository.create(at: t.path + "/old")
        #expect(upgraded.actions.first == .repositoryExists(t.path + "/old"))
        #expect(upgraded.repository.id != nil)
        #expect(FileIO.isDirectory(t.path + "/old/doc"))
    }
}
