// Links and ownership changes that only a user namespace mapping the user's subordinate ids allows,
// done a directory at a time by CShim's ud_userns_run children on this process's descriptors.
import CShim
#if canImport(Glibc)
import Glibc
#endif

/// One directory's worth of work for the namespace children.
public struct NamespaceJob: Sendable {
    public enum Kind: Sendable { case link, seal }
    public var kind: Kind
    /// Where sources are opened (links only): a root descriptor and a relative directory ("" = root).
    public var srcRoot: Int32
    public var srcDir: String
    /// The directory the names are made (links) or changed (seals) in.
    public var dstRoot: Int32
    public var dstDir: String
    public var names: [String]
    /// Links: the names made in the destination, when they differ from `names`.
    public var dstNames: [String]?
    /// Seals: the mode each file gets after its owner changed.
    public var modes: [UInt32]

    public static func link(from srcRoot: Int32, _ srcDir: String, to dstRoot: Int32, _ dstDir: String, names: [String],
                            as dstNames: [String]? = nil) -> NamespaceJob {
        NamespaceJob(kind: .link, srcRoot: srcRoot, srcDir: srcDir, dstRoot: dstRoot, dstDir: dstDir, names: names,
                     dstNames: dstNames, modes: [])
    }

    public static func seal(in root: Int32, _ dir: String, names: [String], modes: [UInt32]) -> NamespaceJob {
        NamespaceJob(kind: .seal, srcRoot: -1, srcDir: "", dstRoot: root, dstDir: dir, names: names, dstNames: nil, modes: modes)
    }
}

public enum UserNamespace {
    /// Runs `jobs` on `children` children, each in a new user namespace where the user is 0 and
    /// `owner`'s subordinate ids are 1. Returns, per job and name, 0 or the errno of its call.
    /// Throws CASError.userNamespace when the namespace cannot be made (newuidmap refused, user
    /// namespaces disabled).
    public static func run(_ jobs: [NamespaceJob], owner: SealOwner, children: Int) throws -> [[Int32]] {
        if jobs.isEmpty { return [] }
        return try Session(owner: owner, children: min(children, jobs.count)).run(jobs)
    }

    /// Namespace children made ahead of their work: their newuidmap and newgidmap run while the caller
    /// walks a tree, and `run` hands them the jobs. One `run` per session; a session dropped without
    /// one lets its children go.
    public final class Session {
        // Not Sendable: one thread makes it, runs it and drops it.
        private var session: OpaquePointer?

        public init(owner: SealOwner, children: Int) {
            var ids = ud_ns_ids()
            ids.uid = owner.uid; ids.gid = owner.gid; ids.subuid = owner.subuid; ids.subgid = owner.subgid
            session = owner.newuidmap.withCString { u in
                owner.newgidmap.withCString { g in
                    ids.newuidmap = u
                    ids.newgidmap = g
                    return ud_userns_start(Int32(children), &ids)
                }
            }
        }

        deinit {
            if let s = session { _ = ud_userns_finish(s, nil, 0, nil, 0) }
        }

        public func run(_ jobs: [NamespaceJob]) throws -> [[Int32]] {
            let s = session
            session = nil
            var err = [CChar](repeating: 0, count: 512)
            let errCount = err.count
            var out = [[Int32]]()
            let rc = UserNamespace.withOps(jobs) { ops, results in
                let rc = ud_userns_finish(s, ops, jobs.count, &err, errCount)
                if rc == 0 { out = results() }
                return rc
            }
            if rc != 0 {
                let why = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                throw CASError.userNamespace(why.isEmpty ? String(cString: strerror(rc)) : why)
            }
            return out
        }
    }

    /// Lays `jobs` out as C operations for `body`, whose second argument reads the per-name results:
    /// one buffer for every name and directory, one for the name pointers, modes and results, so
    /// twenty thousand names cost a handful of allocations.
    static func withOps(_ jobs: [NamespaceJob],
                        _ body: (UnsafeMutablePointer<ud_ns_op>, () -> [[Int32]]) -> Int32) -> Int32 {
        var textBytes = 0, nameCount = 0
        for j in jobs {
            textBytes += j.srcDir.utf8.count + j.dstDir.utf8.count + 2
            for n in j.names { textBytes += n.utf8.count + 1 }
            for n in j.dstNames ?? [] { textBytes += n.utf8.count + 1 }
            nameCount += j.names.count
        }
        let text = UnsafeMutablePointer<CChar>.allocate(capacity: max(textBytes, 1))
        let namePtrs = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(nameCount, 1))
        let dstPtrs = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(nameCount, 1))
        let modes = UnsafeMutablePointer<UInt32>.allocate(capacity: max(nameCount, 1))
        let results = UnsafeMutablePointer<Int32>.allocate(capacity: max(nameCount, 1))
        let ops = UnsafeMutablePointer<ud_ns_op>.allocate(capacity: max(jobs.count, 1))
        defer {
            text.deallocate(); namePtrs.deallocate(); dstPtrs.deallocate(); modes.deallocate(); results.deallocate(); ops.deallocate()
        }
        var at = 0
        func put(_ s: String) -> UnsafePointer<CChar> {
            let start = text + at
            for b in s.utf8 { text[at] = CChar(bitPattern: b); at += 1 }
            text[at] = 0
            at += 1
            return UnsafePointer(start)
        }
        var first = 0
        for (i, j) in jobs.enumerated() {
            let src = put(j.srcDir), dst = put(j.dstDir)
            for (k, n) in j.names.enumerated() {
                namePtrs[first + k] = put(n)
                if let d = j.dstNames, k < d.count { dstPtrs[first + k] = put(d[k]) }
                modes[first + k] = k < j.modes.count ? j.modes[k] : 0
                results[first + k] = 0
            }
            ops[i] = ud_ns_op(kind: j.kind == .link ? Int32(UD_NS_LINK) : Int32(UD_NS_CHOWN),
                              src_root: j.srcRoot, src_dir: src, dst_root: j.dstRoot, dst_dir: dst,
                              names: UnsafePointer(namePtrs + first),
                              dst_names: j.dstNames == nil ? nil : UnsafePointer(dstPtrs + first),
                              modes: UnsafePointer(modes + first),
                              count: j.names.count, results: results + first)
            first += j.names.count
        }
        return body(ops) {
            var out = [[Int32]]()
            out.reserveCapacity(jobs.count)
            var first = 0
            for j in jobs {
                out.append(Array(UnsafeBufferPointer(start: results + first, count: j.names.count)))
                first += j.names.count
            }
            return out
        }
    }
}
