// Where a sync goes to or comes from (a repository directory, ssh://, docker://), and the command line
// that starts the far end of a sync session: this binary on this host, or on another host through ssh.
import Foundation

public enum SyncLocation: Sendable, Equatable, CustomStringConvertible {
    /// A repository directory on this host.
    case local(path: String)
    /// A repository on another host, reached by ssh; the far end runs udocker over stdin/stdout.
    case ssh(SSHLocation)
    /// A registry namespace: images are pushed as they are, containers as images.
    case registry(host: String, namespace: String)

    /// Parses a TARGET or SOURCE argument. A relative directory path is taken from the current
    /// directory, as `mkrepo` takes it.
    public static func parse(_ text: String) throws -> SyncLocation {
        if text.hasPrefix("ssh://") { return .ssh(try SSHLocation.parse(text)) }
        if text.hasPrefix("docker://") {
            let rest = String(text.dropFirst("docker://".count))
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex else {
                throw RuntimeError.syncBadLocation(text, reason: "a registry location needs a host and a namespace")
            }
            let host = String(rest[..<slash])
            let namespace = String(rest[rest.index(after: slash)...]).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard !namespace.isEmpty else {
                throw RuntimeError.syncBadLocation(text, reason: "a registry location needs a namespace after the host")
            }
            return .registry(host: host, namespace: namespace)
        }
        if text.isEmpty { throw RuntimeError.syncBadLocation(text, reason: "it is empty") }
        if let scheme = text.range(of: "://"), !text[..<scheme.lowerBound].contains("/") {
            throw RuntimeError.syncBadLocation(text, reason: "'\(text[..<scheme.lowerBound])://' is not a scheme sync knows")
        }
        let absolute = text.hasPrefix("/") ? text : FileManager.default.currentDirectoryPath + "/" + text
        return .local(path: URL(fileURLWithPath: absolute).standardizedFileURL.path)
    }

    public var description: String {
        switch self {
        case .local(let path): return path
        case .ssh(let s): return s.description
        case .registry(let host, let namespace): return "docker://\(host)/\(namespace)"
        }
    }
}

/// ssh://[user@]host[:port]/path. The path is the far repository's directory: absolute after the
/// host's slash (ssh://h/data/repo is /data/repo); `~/` after it is the far user's home
/// (ssh://h/~/repo), as scp and rsync take it.
public struct SSHLocation: Sendable, Equatable, CustomStringConvertible {
    public var user: String?
    public var host: String
    public var port: Int?
    public var path: String

    public init(user: String? = nil, host: String, port: Int? = nil, path: String) {
        self.user = user; self.host = host; self.port = port; self.path = path
    }

    public static func parse(_ text: String) throws -> SSHLocation {
        let rest = String(text.dropFirst("ssh://".count))
        guard let slash = rest.firstIndex(of: "/") else {
            throw RuntimeError.syncBadLocation(text, reason: "an ssh location needs a path after the host (ssh://host/path)")
        }
        var authority = String(rest[..<slash])
        var path = String(rest[slash...])
        if path.hasPrefix("/~/") || path == "/~" { path.removeFirst() }
        guard path != "/" && !path.isEmpty else {
            throw RuntimeError.syncBadLocation(text, reason: "the repository path is empty")
        }
        var user: String?
        if let at = authority.lastIndex(of: "@") {
            user = String(authority[..<at])
            authority = String(authority[authority.index(after: at)...])
            if user?.isEmpty == true { throw RuntimeError.syncBadLocation(text, reason: "the user name before '@' is empty") }
        }
        var port: Int?
        if let colon = authority.lastIndex(of: ":"), !authority.hasPrefix("[") || authority[..<colon].hasSuffix("]") {
            let p = authority[authority.index(after: colon)...]
            guard let n = Int(p), (1...65535).contains(n) else {
                throw RuntimeError.syncBadLocation(text, reason: "'\(p)' is not a port number")
            }
            port = n
            authority = String(authority[..<colon])
        }
        if authority.hasPrefix("[") && authority.hasSuffix("]") { authority = String(authority.dropFirst().dropLast()) }
        guard !authority.isEmpty else { throw RuntimeError.syncBadLocation(text, reason: "the host name is empty") }
        // A host or user starting with '-' would be taken by ssh as an option.
        guard !authority.hasPrefix("-"), user?.hasPrefix("-") != true else {
            throw RuntimeError.syncBadLocation(text, reason: "a host or user name may not start with '-'")
        }
        return SSHLocation(user: user, host: authority, port: port, path: path)
    }

    public var description: String {
        var s = "ssh://"
        if let user { s += user + "@" }
        s += host.contains(":") ? "[\(host)]" : host
        if let port { s += ":\(port)" }
        return s + (path.hasPrefix("~") ? "/" + path : path)
    }

    /// The command line that runs `remoteArguments` on the host through ssh:
    /// `SSH [-p PORT] [-l USER] HOST WORD...`, where SSH is `sshCommand` split into words as a shell
    /// would (rsync's `-e`), and each remote word is quoted for the far end's shell, which ssh hands the
    /// joined words to.
    public func command(sshCommand: String, remoteArguments: [String]) throws -> [String] {
        var argv = try ShellWords.split(sshCommand)
        guard !argv.isEmpty else {
            throw RuntimeError.syncBadLocation(description, reason: "the ssh command (--ssh or UDOCKER_SSH) is empty")
        }
        if let port { argv += ["-p", String(port)] }
        if let user { argv += ["-l", user] }
        argv.append(host)
        argv += remoteArguments.map { ShellWords.quote($0, home: true) }
        return argv
    }
}

/// Splitting a command given as one string into words, and quoting words for a POSIX shell.
public enum ShellWords {
    /// Splits as sh does for a simple command: blanks separate words; single quotes keep everything,
    /// double quotes keep all but `\"`, `\\`, `\$` and `` \` ``; a backslash outside quotes keeps the
    /// next character. Nothing is expanded.
    public static func split(_ text: String) throws -> [String] {
        var words = [String](), word = "", inWord = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            switch c {
            case " ", "\t", "\n":
                if inWord { words.append(word); word = ""; inWord = false }
            case "'":
                inWord = true
                guard let end = chars.firstIndex(of: "'") else { throw unterminated(text, "'") }
                word += String(chars[..<end]); chars = chars[(end + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\"" { closed = true; break }
                    if d == "\\", let n = chars.first, "\"\\$`".contains(n) { word.append(n); chars.removeFirst(); continue }
                    word.append(d)
                }
                if !closed { throw unterminated(text, "\"") }
            case "\\":
                inWord = true
                if let n = chars.popFirst(), n != "\n" { word.append(n) }
            default:
                inWord = true; word.append(c)
            }
        }
        if inWord { words.append(word) }
        return words
    }

    private static func unterminated(_ text: String, _ quote: String) -> RuntimeError {
        .syncBadLocation(text, reason: "the ssh command has an unterminated \(quote) quote")
    }

    /// `word` quoted so that a POSIX shell reads it back unchanged. With `home`, a `~/` at the start of
    /// the word or of an option's value (`--repo=~/r`) becomes the far user's home ("$HOME"), which the
    /// far shell fills in.
    public static func quote(_ word: String, home: Bool = false) -> String {
        if home {
            let value = word.firstIndex(of: "=").map { word.index(after: $0) } ?? word.startIndex
            let rest = word[value...]
            if rest == "~" || rest.hasPrefix("~/") {
                let prefix = String(word[..<value]), tail = String(rest.dropFirst(rest == "~" ? 1 : 2))
                return (prefix.isEmpty ? "" : quote(prefix)) + "\"$HOME\"" + (tail.isEmpty ? "" : "/" + quote(tail))
            }
        }
        let plain = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ plain.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
