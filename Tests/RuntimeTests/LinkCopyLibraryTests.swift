// The preload library of sealed containers as udocker writes it: the plugin's bytes, loadable
// anywhere (no libraries needed, the host's machine), written once under its digest.
#if canImport(Glibc)
import Glibc
#endif
import Testing
import CAS
@testable import Runtime

@Suite struct LinkCopyLibraryTests {
    @Test func installWritesTheEmbeddedLibraryOnceUnderItsDigest() throws {
        let t = TempDir("linkcopy")
        let path = try LinkCopyLibrary.install(libdir: t.path + "/lib")
        #expect(path == t.path + "/lib/udocker-link-copy-" + String(preloadLibraryDigest.prefix(16)) + ".so")
        let bytes = try FileIO.readFile(path)
        #expect(try SHA256Hasher.digest(of: bytes).hex == preloadLibraryDigest)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o755)

        let elf = try #require(ElfFile.read(path), "not an ELF file")
        #expect(elf.needed == 0, "the library needs \(elf.needed) libraries: it would not load in every image")
        #expect(elf.machine == LinkCopyLibrary.hostMachine)
        #expect(elf.interpreter == nil)

        // A second run finds it: the same file, not rewritten.
        let again = try LinkCopyLibrary.install(libdir: t.path + "/lib")
        var st2 = stat()
        #expect(again == path && stat(again, &st2) == 0 && st2.st_ino == st.st_ino)
    }

    @Test func preloadValueKeepsWhatTheContainerPreloads() {
        #expect(LinkCopyLibrary.preloadValue(nil, adding: "/l.so") == "/l.so")
        #expect(LinkCopyLibrary.preloadValue("", adding: "/l.so") == "/l.so")
        #expect(LinkCopyLibrary.preloadValue("/a.so", adding: "/l.so") == "/a.so:/l.so")
    }

    @Test func onlyProgramsOfThisMachineGetIt() throws {
        let t = TempDir("linkcopy")
        #expect(LinkCopyLibrary.suits(hostProgram: "/bin/sh"))
        // The host's /bin/true marked as a program for another machine (e_machine 40, ARM).
        var program = try FileIO.readFile("/bin/true")
        program[18] = 40; program[19] = 0
        try FileIO.writeAtomically(t.path + "/arm", program)
        #expect(!LinkCopyLibrary.suits(hostProgram: t.path + "/arm"))
        let script = try t.write("script", "#!/bin/sh\n")
        #expect(LinkCopyLibrary.suits(hostProgram: script))
    }
}
