// Where a sync goes: parsing of directories, ssh:// and docker:// locations, shell words, and the ssh
// command line that starts the far end.
import Testing
@testable import Runtime

@Suite struct SyncLocationTests {
    @Test func sshLocationsWithUserPortAndHome() throws {
        #expect(try SyncLocation.parse("ssh://alice@node1:2222/data/repo")
                == .ssh(SSHLocation(user: "alice", host: "node1", port: 2222, path: "/data/repo")))
        #expect(try SyncLocation.parse("ssh://node1/~/.udocker") == .ssh(SSHLocation(host: "node1", path: "~/.udocker")))
        #expect(try SyncLocation.parse("ssh://[::1]:22/r") == .ssh(SSHLocation(host: "::1", port: 22, path: "/r")))
        #expect(try SyncLocation.parse("docker://127.0.0.1:5000/team/x") == .registry(host: "127.0.0.1:5000", namespace: "team/x"))
        #expect(try SyncLocation.parse("/a/b/../c") == .local(path: "/a/c"))
    }

    @Test func badLocationsSayWhy() {
        for (text, why) in [("ssh://host", "needs a path"), ("ssh://-oProxyCommand=x/r", "may not start with '-'"),
                            ("ssh://h:99999/r", "is not a port number"), ("docker://host", "needs a host and a namespace"),
                            ("ftp://h/x", "not a scheme"), ("", "empty")] {
            #expect(throws: RuntimeError.self) { try SyncLocation.parse(text) }
            do { _ = try SyncLocation.parse(text) } catch { #expect("\(error)".contains(why), "\(text): \(error)") }
        }
    }

    @Test func shellWordsSplitAndQuoteRoundTrip() throws {
        #expect(try ShellWords.split(#"ssh -i "/my keys/k" -o 'ProxyJump=a b' x\ y"#) == ["ssh", "-i", "/my keys/k", "-o", "ProxyJump=a b", "x y"])
        #expect(throws: RuntimeError.self) { try ShellWords.split("ssh 'open") }
        for w in ["plain", "a b", "it's", "$HOME", "`x`", "", "semi;colon", "new\nline"] {
            #expect(try ShellWords.split(ShellWords.quote(w)) == [w], "\(w)")
        }
        #expect(ShellWords.quote("~/r", home: true) == "\"$HOME\"/r")
        #expect(ShellWords.quote("--repo=~/my repo", home: true) == "--repo=\"$HOME\"/'my repo'")
    }

    @Test func theFarEndCommandLine() throws {
        let s = SSHLocation(user: "bob", host: "h", port: 2200, path: "~/r x")
        let argv = try SSHTransport.farEndCommand(s, options: SSHOptions(sshCommand: "ssh -i k", remoteUdocker: "/opt/u d/udocker", environment: [:]),
                                                  udockerArguments: ["--repo=" + s.path, "sync-serve"])
        #expect(argv == ["ssh", "-i", "k", "-p", "2200", "-l", "bob", "h", "'/opt/u d/udocker'", "--repo=\"$HOME\"/'r x'", "sync-serve"])
        #expect(SSHOptions(environment: ["UDOCKER_SSH": "myssh -q"]).sshCommand == "myssh -q")
    }
}
