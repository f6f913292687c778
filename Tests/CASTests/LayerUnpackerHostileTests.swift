// Tests that hostile layers cannot create or change anything outside the unpack root: ".." names,
// absolute names, symlinked parents, hardlinks to host files, symlinks replaced by later entries.
import Foundation
import Testing
@testable import CAS

/// A sandbox with the unpack root, a canary directory beside it and another canary directory directly
/// in /tmp (what an absolute symlink would point at); `assertUntouched` checks both after the unpack.
final class HostileSetup {
    let box: Sandbox
    let root: String
    let sibling: String
    let tmpCanary: String
    let tmpCanaryMode: mode_t?

    init() throws {
        box = try Sandbox("hostile")
        root = try box.emptyDirectory("root")
        sibling = try box.emptyDirectory("canary")
        try box.write("canary/keep", Array("sibling canary".utf8))
        tmpCanary = "/tmp/udocker-canary-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileIO.mkdirs(tmpCanary)
        try FileIO.writeAtomically(tmpCanary + "/keep", Array("tmp canary".utf8))
        tmpCanaryMode = lstatOf(tmpCanary)?.st_mode
    }

    deinit { try? FileIO.removeTree(tmpCanary) }

    func unpackLayer(_ entries: [TarEntry]) throws -> LayerManifest {
        try writeTar(entries, to: box.path("layer.tar"))
        return try unpack(box.path("layer.tar"), into: root)
    }

    func assertUntouched(sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try FileIO.listDirectory(box.base).sorted() == ["canary", "layer.tar", "root"],
                sourceLocation: sourceLocation)
        #expect(try FileIO.listDirectory(sibling) == ["keep"], sourceLocation: sourceLocation)
        #expect(fileText(sibling + "/keep") == "sibling canary", sourceLocation: sourceLocation)
        #expect(lstatOf(sibling + "/keep")?.st_nlink == 1, sourceLocation: sourceLocation)
        #expect(try FileIO.listDirectory(tmpCanary) == ["keep"], sourceLocation: sourceLocation)
        #expect(fileText(tmpCanary + "/keep") == "tmp canary", sourceLocation: sourceLocation)
        #expect(lstatOf(tmpCanary + "/keep")?.st_nlink == 1, sourceLocation: sourceLocation)
        #expect(lstatOf(tmpCanary)?.st_mode == tmpCanaryMode, sourceLocation: sourceLocation)
    }
}

@Suite struct LayerUnpackerHostileTests {
    @Test func dotDotNamesAreSkipped() throws {
        let h = try HostileSetup()
        let m = try h.unpackLayer([
            .file("../canary/pwned", "x"),
            .file("a/../../canary/pwned2", "x"),
            .dir("../canary/newdir/"),
            .symlink("../canary/link", "/etc/passwd"),
            .file("../canary/keep", "overwritten"),
            .file("a/../inside", "fine"),
        ])
        try h.assertUntouched()
        for name in ["../canary/pwned", "a/../../canary/pwned2", "../canary/newdir/", "../canary/link", "../canary/keep"] {
            #expect(m.skipReason(name)?.contains("climbs out") == true, "\(name) must be skipped")
        }
        #expect(fileText(h.root + "/inside") == "fine")
        #expect(m.entries.map(\.path) == ["inside"])
    }

    /// A path no later command could name once it is inside a store or a container (near PATH_MAX)
    /// is left out with a note; the layer's other entries are unpacked and the layer stays healthy.
    @Test func pathsLongerThanTheLimitAreSkipped() throws {
        let h = try HostileSetup()
        let deep = String(repeating: "d/", count: 1900) + "f"    // 3801 bytes
        let fits = String(repeating: "e/", count: 1700) + "g"    // 3401 bytes
        let m = try h.unpackLayer([.file(deep, "x"), .file(fits, "y"), .file("ok", "fine")])
        try h.assertUntouched()
        #expect(m.skipReason(deep)?.contains("longer than 3584 bytes") == true, "\(m.skipped.map(\.reason))")
        #expect(m.entries.contains { $0.path == fits })
        #expect(fileText(h.root + "/ok") == "fine")
        #expect(lstatOf(h.root + "/d") == nil, "nothing of the long path is made")
    }

    @Test func absoluteNamesLandInsideTheRoot() throws {
        let h = try HostileSetup()
        let m = try h.unpackLayer([
            .file("/abs/file", "abs"),
            .file(h.tmpCanary + "/keep", "would overwrite the canary"),
            .file(h.tmpCanary + "/pwned", "new"),
        ])
        try h.assertUntouched()
        #expect(m.skipped.isEmpty)
        #expect(fileText(h.root + "/abs/file") == "abs")
        #expect(fileText(h.root + h.tmpCanary + "/keep") == "would overwrite the canary")
        #expect(m.entry(String(h.tmpCanary.dropFirst()) + "/pwned") != nil)
    }

    @Test func entriesBelowASymlinkAreNeverWrittenThroughIt() throws {
        let h = try HostileSetup()
        let m = try h.unpackLayer([
            .file("plain", "a file"),
            .symlink("evil", h.tmpCanary),
            .file("evil/pwned", "x"),
            .hardlink("evil/hl", "plain"),
            .file("evil/keep", "overwritten"),
            .dir("evil/newdir/"),
            .symlink("evil/link", "/etc/passwd"),
            TarEntry(path: "evil/fifo", kind: .fifo, mode: 0o644),
            .file("evil/deeper/still", "x"),
            .symlink("up", "../../.."),
            .file("up/tmp/pwned", "x"),
            .symlink("rel", "../canary"),
            .file("rel/pwned", "x"),
            .dir("d/"),
            .symlink("d/s", "/"),
            .file("d/s/" + h.tmpCanary.dropFirst() + "/pwned", "x"),
            .file("./evil/../ok", "ok"),
            .file("plain/under-a-file", "x"),
        ])
        try h.assertUntouched()
        for name in ["evil/pwned", "evil/hl", "evil/keep", "evil/newdir", "evil/link", "evil/fifo", "evil/deeper/still"] {
            #expect(m.skipReason(name) == "parent 'evil' is a symlink; not followed, entry not created", "\(name)")
        }
        #expect(m.skipReason("up/tmp/pwned")?.contains("'up' is a symlink") == true)
        #expect(m.skipReason("rel/pwned")?.contains("'rel' is a symlink") == true)
        #expect(m.skipReason("d/s/" + h.tmpCanary.dropFirst() + "/pwned")?.contains("'d/s' is a symlink") == true)
        #expect(fileText(h.root + "/ok") == "ok")
        #expect(lstatOf(h.root + "/evil").map { $0.st_mode & S_IFMT } == S_IFLNK)
        #expect(m.skipReason("plain/under-a-file") == "parent 'plain' is not a directory; entry not created")
        #expect(lstatOf(h.root + "/plain")?.st_nlink == 1)
    }

    @Test func hardlinksToOutsideOrThroughSymlinksAreSkipped() throws {
        let h = try HostileSetup()
        let passwdBefore = try #require(lstatOf("/etc/passwd"))
        let m = try h.unpackLayer([
            .hardlink("h-climb", "../canary/keep"),
            .hardlink("h-passwd", "/etc/passwd"),
            .hardlink("h-abs", h.tmpCanary + "/keep"),
            .symlink("evil", h.tmpCanary),
            .hardlink("h-through", "evil/keep"),
            .symlink("evil-file", h.tmpCanary + "/keep"),
            .file("ok", "inside"),
            .hardlink("h-ok", "ok"),
            .hardlink("h-symlink", "evil-file"),
            .dir("dir/"),
            .hardlink("h-dir", "dir"),
            .hardlink("h-later", "later"),
            .file("later", "l"),
        ])
        try h.assertUntouched()
        let passwdAfter = try #require(lstatOf("/etc/passwd"))
        #expect(passwdAfter.st_nlink == passwdBefore.st_nlink)
        #expect(m.skipReason("h-climb")?.contains("outside the layer root") == true)
        for name in ["h-passwd", "h-abs", "h-through", "h-dir", "h-later"] {
            #expect(m.skipReason(name)?.contains("not a file written earlier by this layer") == true, "\(name)")
            #expect(lstatOf(h.root + "/" + name) == nil, "\(name) must not exist")
            #expect(m.entry(name) == nil)
        }
        // Allowed: a link to a file of this layer (same inode), and to a symlink of this layer (the
        // link is another symlink; it is not followed when created).
        #expect(lstatOf(h.root + "/h-ok")?.st_ino == lstatOf(h.root + "/ok")?.st_ino)
        #expect(m.entry("h-ok")?.target == "ok")
        #expect(lstatOf(h.root + "/h-symlink").map { $0.st_mode & S_IFMT } == S_IFLNK)
    }

    @Test func laterEntriesReplaceSymlinksInsteadOfWritingThroughThem() throws {
        let h = try HostileSetup()
        let m = try h.unpackLayer([
            .symlink("s", h.tmpCanary + "/keep"),
            .file("s", "replaced the symlink"),
            .symlink("sib", "../canary/keep"),
            .file("sib", "replaced too"),
            .symlink("sd", h.tmpCanary),
            .dir("sd/"),
            .file("sd/x", "inside"),
            .symlink("sl", h.tmpCanary + "/keep"),
            .file("ok", "ok"),
            .hardlink("sl", "ok"),
            .symlink("sf", h.tmpCanary + "/fifo"),
            TarEntry(path: "sf", kind: .fifo, mode: 0o644),
            .symlink("sdev", h.tmpCanary + "/dev"),
            TarEntry(path: "sdev", kind: .charDevice(1, 3), mode: 0o666),
        ])
        try h.assertUntouched()
        #expect(fileText(h.root + "/s") == "replaced the symlink")
        #expect(lstatOf(h.root + "/s").map { $0.st_mode & S_IFMT } == S_IFREG)
        #expect(fileText(h.root + "/sib") == "replaced too")
        #expect(lstatOf(h.root + "/sd").map { $0.st_mode & S_IFMT } == S_IFDIR)
        #expect(fileText(h.root + "/sd/x") == "inside")
        #expect(lstatOf(h.root + "/sl")?.st_ino == lstatOf(h.root + "/ok")?.st_ino)
        #expect(lstatOf(h.root + "/sf").map { $0.st_mode & S_IFMT } == S_IFIFO)
        // The device is not created and the symlink it replaced is gone from disk and manifest.
        #expect(lstatOf(h.root + "/sdev") == nil)
        #expect(m.entries.filter { $0.path == "sdev" }.map(\.kind) == [.charDevice])
        #expect(m.entries.filter { $0.path == "s" }.map(\.kind) == [.file])
    }

    @Test func rootEntriesCannotBeReplaced() throws {
        let h = try HostileSetup()
        let m = try h.unpackLayer([
            .symlink(".", h.tmpCanary),
            .file("/.", "x"),
            .file("after", "still inside"),
        ])
        try h.assertUntouched()
        #expect(m.skipReason("")?.contains("replace the layer root") == true)
        #expect(m.skipped.count == 2)
        #expect(fileText(h.root + "/after") == "still inside")
    }

    /// A regular file named "/" with data (GNU tar and udocker 1.3.17 accept it): skipped with a note,
    /// and the rest of the layer is unpacked.
    @Test func aRegularFileNamedSlashIsSkipped() throws {
        let h = try HostileSetup()
        let data = String(repeating: "data of a file named slash\n", count: 100)
        let m = try h.unpackLayer([
            .file("before", "first"),
            .file("/", data),
            .file("after", "still unpacked"),
        ])
        try h.assertUntouched()
        #expect(m.skipReason("") == "regular file named '/' (ends with '/'), \(data.utf8.count) bytes; not created", "\(m.skipped)")
        #expect(m.skipped.count == 1)
        #expect(fileText(h.root + "/before") == "first")
        #expect(fileText(h.root + "/after") == "still unpacked")
        #expect(m.entries.map(\.path).sorted() == ["after", "before"])
    }

    /// The same entry whose data holds a tar header: GNU tar reads it as file data, libarchive would read
    /// it as an entry. Refused rather than unpacked differently from what other tools see.
    @Test func aFileNamedSlashHidingTarHeadersIsRefused() throws {
        let h = try HostileSetup()
        try writeTar([.file("smuggled", "hidden")], to: h.box.path("inner.tar"))
        let inner = try FileIO.readFile(h.box.path("inner.tar"))
        try FileIO.removeTree(h.box.path("inner.tar"))
        do {
            _ = try h.unpackLayer([
                TarEntry(path: "/", kind: .file(inner), mode: 0o644),
                .file("after", "x"),
            ])
            Issue.record("a layer whose '/' entry hides tar headers was unpacked")
        } catch {
            #expect("\(error)".contains("is a regular file named like a directory and its data cannot be skipped"), "\(error)")
        }
        #expect(!FileIO.exists(h.root + "/smuggled"))
        try h.assertUntouched()
    }
}
