// udocker.conf parsing: the ConfigParser dialect udocker 1.3 reads and the errors for bad lines.
import Testing
@testable import Runtime

@Suite struct ConfigFileTests {
    @Test func readsDefaultSectionInUdockersSyntax() throws {
        let text = """
            # a comment
            ; another comment
            [DEFAULT]
            verbose_level = 5
            Dockerio_Registry_URL: https://myregistry.mydomain:5000
            cmd = ['bash', '-l']
            http_proxy = socks5://u:p@h:1080 # kept, ConfigParser has no inline comments
            fakechroot_cmd_subst = /sbin/ldconfig=#RETURN(TRUE)#
               :/usr/sbin/ldconfig=#RETURN(TRUE)#

            [other]
            verbose_level = 1
            """
        let file = try ConfigFile.parse(text, path: "/x/udocker.conf")
        try #require(file.entries.map(\.key) == ["verbose_level", "dockerio_registry_url", "cmd",
                                                  "http_proxy", "fakechroot_cmd_subst"])
        #expect(file.entries[0].value == "5")
        #expect(file.entries[0].line == 4)
        #expect(file.entries[1].value == "https://myregistry.mydomain:5000")
        #expect(file.entries[3].value == "socks5://u:p@h:1080 # kept, ConfigParser has no inline comments")
        #expect(file.entries[4].value == "/sbin/ldconfig=#RETURN(TRUE)#\n:/usr/sbin/ldconfig=#RETURN(TRUE)#")
    }

    @Test func keysBeforeAnySectionCountAsDefault() throws {
        let file = try ConfigFile.parse("http_insecure = True\r\nverbose_level = 5\r\n", path: "f")
        try #require(file.entries.map(\.key) == ["http_insecure", "verbose_level"])
        #expect(file.entries[1].value == "5")
    }

    @Test func malformedLineNamesFileAndLine() {
        let text = "[DEFAULT]\nverbose_level = 3\nthis is not a setting\n"
        #expect(throws: RuntimeError.configSyntax(file: "/etc/udocker.conf", line: 3,
                                                  message: "expected 'key = value', found 'this is not a setting'")) {
            try ConfigFile.parse(text, path: "/etc/udocker.conf")
        }
        do {
            _ = try ConfigFile.parse(text, path: "/etc/udocker.conf")
        } catch {
            #expect(String(describing: error).hasPrefix("/etc/udocker.conf line 3: expected 'key = value'"))
        }
    }

    @Test func otherMalformedLines() {
        #expect(throws: RuntimeError.self) { try ConfigFile.parse("[DEFAULT\n", path: "f") }
        #expect(throws: RuntimeError.self) { try ConfigFile.parse("= value\n", path: "f") }
        #expect(throws: RuntimeError.configSyntax(file: "f", line: 3,
                                                  message: "key 'a' is set twice in [DEFAULT] (first on line 1)")) {
            try ConfigFile.parse("a = 1\nb = 2\nA = 3\n", path: "f")
        }
        #expect(throws: RuntimeError.self) { try ConfigFile.parse("[DEFAULT]\n[DEFAULT]\n", path: "f") }
    }
}
