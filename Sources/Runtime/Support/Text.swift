// Text search on a run's path without Foundation, whose String methods (range(of:), contains,
// trimmingCharacters(in:)) go through NSString and cost a run about 0.5 ms on their first use.
extension String {
    /// Whether `needle` occurs in the string (byte for byte, as UTF-8).
    func containsText(_ needle: String) -> Bool {
        byteOffset(of: needle) != nil
    }

    /// The UTF-8 offset of the first `needle`, or nil.
    func byteOffset(of needle: String) -> Int? {
        ByteSearch.find(Array(utf8), Array(needle.utf8), from: 0)
    }
}

/// The first occurrence of a byte string: one search for text (above) and binary files (the
/// loader's built-in paths in FakechrootTree).
enum ByteSearch {
    static func find(_ hay: [UInt8], _ needle: [UInt8], from: Int) -> Int? {
        if needle.isEmpty { return hay.count >= from ? from : nil }
        guard hay.count >= needle.count else { return nil }
        var i = from
        let last = hay.count - needle.count
        let first = needle[0]
        while i <= last {
            if hay[i] == first {
                var k = 1
                while k < needle.count && hay[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
