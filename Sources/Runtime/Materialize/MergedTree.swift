// The tree an image's layers make when stacked, computed in memory from the layers' manifests
// (bottom to top) with OCI's whiteout and opaque-directory rules; nothing on disk is read but layer.json.
import CAS

/// One path of the merged tree.
final class MergedNode {
    enum Kind { case directory, file, symlink, fifo, device }
    var kind: Kind
    /// Index of the layer the entry comes from; for a directory, the layer of its metadata.
    var layer: Int
    /// The manifest entry; nil for a directory no layer lists (a parent a tar left out).
    var entry: TreeEntry?
    /// Children by name (directories only).
    var children: [String: MergedNode] = [:]

    init(kind: Kind, layer: Int, entry: TreeEntry?) {
        self.kind = kind; self.layer = layer; self.entry = entry
    }

    /// Original permission bits (0755 for a directory no layer lists).
    var mode: UInt32 { entry?.mode ?? 0o755 }

    /// Children in name order, so materialisation is deterministic and walks directories in order.
    var sortedChildren: [(String, MergedNode)] {
        children.sorted { $0.key < $1.key }
    }
}

/// Builds the merged tree of layers. Rules (OCI image spec, "Representing Changes"):
/// - a layer's whiteouts (`.wh.NAME`, at any depth including the top) remove NAME and everything
///   below it that lower layers made; they never hide entries of their own layer;
/// - an opaque directory (`.wh..wh..opq`) hides what lower layers put in that directory, keeping the
///   directory itself and its own layer's entries;
/// - an entry replaces a lower entry of the same path, except that a directory over a directory
///   merges (the upper metadata wins, the content is the union);
/// - an entry whose parent in the merged tree is not a directory (a symlink or file of a lower layer,
///   or of its own) is skipped with a note: it would otherwise be created through that symlink.
struct MergedTree {
    let root: MergedNode
    /// Entries that were skipped, for the user.
    var notes: [String] = []

    init(layers: [LayerTreeInput]) {
        root = MergedNode(kind: .directory, layer: -1, entry: nil)
        for (li, m) in layers.enumerated() { apply(m, layer: li) }
    }

    /// The node at a normalised path ("" is the root), or nil.
    func node(at path: String) -> MergedNode? {
        if path.isEmpty { return root }
        var cur = root
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard cur.kind == .directory, let next = cur.children[String(comp)] else { return nil }
            cur = next
        }
        return cur
    }

    private mutating func apply(_ m: LayerTreeInput, layer li: Int) {
        for w in m.whiteouts {
            let (parent, name) = Self.split(w)
            guard Self.validName(name), let p = node(at: parent), p.kind == .directory else { continue }
            p.children[name] = nil
        }
        for d in m.opaqueDirs {
            if let n = node(at: d), n.kind == .directory { n.children.removeAll() }
        }
        // Hardlinks take the kind of their target (a file or a FIFO of the same layer).
        var fifoPaths = Set<String>()
        for e in m.entries where e.kind == .fifo { fifoPaths.insert(e.path) }

        var lastParentPath: String? = nil
        var lastParent: MergedNode? = nil
        for e in m.entries {
            if e.path.isEmpty {
                if e.kind == .directory { root.entry = e; root.layer = li }
                continue
            }
            let (parentPath, name) = Self.split(e.path)
            guard Self.validName(name) else {
                notes.append("skipped '\(e.path)': not a valid file name")
                continue
            }
            let parent: MergedNode
            if parentPath == lastParentPath, let cached = lastParent {
                parent = cached
            } else {
                switch directory(parentPath, layer: li) {
                case .success(let p):
                    parent = p
                case .failure(let blocker):
                    notes.append("skipped '\(e.path)': its parent '\(blocker.path)' is \(blocker.what) in the image, not followed")
                    continue
                }
                lastParentPath = parentPath
                lastParent = parent
            }
            let kind: MergedNode.Kind
            switch e.kind {
            case .directory: kind = .directory
            case .file: kind = .file
            case .hardlink: kind = fifoPaths.contains(e.target ?? "") ? .fifo : .file
            case .symlink: kind = .symlink
            case .fifo: kind = .fifo
            case .charDevice, .blockDevice: kind = .device
            }
            if kind == .directory, let existing = parent.children[name], existing.kind == .directory {
                existing.entry = e
                existing.layer = li
                continue
            }
            if let existing = parent.children[name], existing.kind == .directory {
                // A directory replaced by a non-directory: anything cached below it is gone.
                lastParentPath = nil
                lastParent = nil
            }
            parent.children[name] = MergedNode(kind: kind, layer: li, entry: e)
        }
    }

    struct Blocker: Error {
        let path: String
        let what: String
    }

    /// The directory node at `path`, creating directories no layer lists; fails when a component is
    /// not a directory.
    private func directory(_ path: String, layer li: Int) -> Result<MergedNode, Blocker> {
        var cur = root
        if path.isEmpty { return .success(cur) }
        var prefix = ""
        for comp in path.split(separator: "/", omittingEmptySubsequences: true) {
            let name = String(comp)
            prefix = prefix.isEmpty ? name : prefix + "/" + name
            if let next = cur.children[name] {
                guard next.kind == .directory else {
                    let what: String
                    switch next.kind {
                    case .symlink: what = "a symlink"
                    case .fifo: what = "a FIFO"
                    case .device: what = "a device node"
                    default: what = "a file"
                    }
                    return .failure(Blocker(path: prefix, what: what))
                }
                cur = next
            } else {
                let made = MergedNode(kind: .directory, layer: li, entry: nil)
                cur.children[name] = made
                cur = made
            }
        }
        return .success(cur)
    }

    static func split(_ path: String) -> (parent: String, name: String) {
        guard let i = path.utf8.lastIndex(of: 0x2F) else { return ("", path) }
        return (String(path[..<i]), String(path[path.index(after: i)...]))
    }

    /// A single path component that cannot climb or name the directory itself (layer.json is ours,
    /// but a damaged one must not make us write outside the container).
    static func validName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(0x2F) && !name.utf8.contains(0)
    }
}
