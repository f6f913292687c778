// Text search on a run's path without Foundation, whose String methods (range(of:), contains,
// trimmingCharacters(in:)) go through NSString and cost a run about 0.5 ms on their first use.
extension String {
    /// Whether `needle` occurs in the string (byte for byte, as UTF-8).
    func containsText(_ needle: String) -> Bool {
        byteOffset(of: needle) != nil
    }

    /// The UTF-8 offset of the first `needle`, or nil.
    func byteOffset(of needle: String) -> Int? {
        var hay = self, pin = needle
        return hay.withUTF8 { h in
            pin.withUTF8 { n -> Int? in
                if n.isEmpty { return 0 }
                guard h.count >= n.count else { return nil }
                let first = n[0]
                var i = 0
                while i <= h.count - n.count {
                    if h[i] == first {
                        var j = 1
                        while j < n.count && h[i + j] == n[j] { j += 1 }
                        if j == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }
}
