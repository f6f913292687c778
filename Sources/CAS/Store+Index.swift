// Whole-index operations of a Store: rebuild from the files and a canonical text dump.

extension Store {
    /// Rebuilds every index entry from the store's files (blobs, layer.json files, ref files), in
    /// one transaction. Returns a note when the index was damaged and had to be replaced.
    @discardableResult
    public func rebuildIndex() throws -> String? {
        try index.rebuild(storeID: id, snapshot: try files.snapshot())
    }

    /// The whole index as sorted lines of text (one per entry); equal dumps mean equal indexes.
    public func dumpIndex() throws -> [String] {
        try index.dump()
    }
}
