// A unique temporary directory under /tmp for one test, removed afterwards.
#if canImport(Glibc)
import Glibc
#endif
import CAS

struct TempDir: ~Copyable {
    let path: String

    init(_ label: String = "runtime") {
        var template = Array("/tmp/udocker-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
        precondition(made != nil, "mkdtemp failed: errno \(errno)")
        path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { try? FileIO.removeTree(path) }

    /// Writes a text file (parents created) and returns its path.
    @discardableResult
    func write(_ relative: String, _ text: String) throws -> String {
        let file = path + "/" + relative
        try FileIO.mkdirs(FileIO.parent(of: file))
        try FileIO.writeAtomically(file, Array(text.utf8))
        return file
    }

    func read(_ relative: String) throws -> String {
        String(decoding: try FileIO.readFile(relative.hasPrefix("/") ? relative : path + "/" + relative), as: UTF8.self)
    }
}
