// The progress display of transfers (pull, push): on a terminal a bar per item and a total bar,
// redrawn in place; otherwise one line per item when it is done; nothing with -q. Thread-safe:
// events arrive from the transfer threads.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class TransferProgress: @unchecked Sendable {
    enum Style { case bars, lines, none }

    struct Item {
        var label: String
        /// Bytes expected; negative when unknown.
        var size: Int64
        var bytes: UInt64 = 0
        var state = "waiting"
        /// Counts as complete in the bars whatever its byte count (found in the store, or remote).
        var complete = false
    }

    let style: Style
    private let lock = NSLock()
    private var items: [Item] = []
    private var drawnLines = 0
    private var lastDraw = 0.0

    init(style: Style) { self.style = style }

    /// Bars when stderr is a terminal, lines otherwise, none when quiet.
    convenience init(quiet: Bool) {
        self.init(style: quiet ? .none : isatty(2) == 1 ? .bars : .lines)
    }

    /// The items of the transfer, by digest and size, in the order of their indexes.
    func plan(_ list: [(digest: String, size: Int64)]) {
        update { items = list.map { Item(label: String($0.digest.prefix(19)), size: $0.size) }; return true }
    }

    func progress(_ i: Int, bytes: UInt64, state: String) {
        update {
            guard i < items.count else { return false }
            items[i].bytes = bytes
            items[i].state = state
            return false
        }
    }

    /// Item `i` finished: `line` is what the line style prints for it.
    func done(_ i: Int, size: UInt64, state: String, complete: Bool, line: String) {
        update {
            guard i < items.count else { return false }
            items[i].bytes = size
            if items[i].size < 0 { items[i].size = Int64(size) }
            items[i].state = state
            items[i].complete = complete
            if style == .lines { Output.write(2, line + "\n") }
            return true
        }
    }

    /// Runs a change under the lock, then redraws (always when the change says so, else at most 10
    /// times a second).
    private func update(_ change: () -> Bool) {
        guard style != .none else { return }
        lock.lock()
        defer { lock.unlock() }
        let force = change()
        guard style == .bars else { return }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let t = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        if !force && t - lastDraw < 0.1 { return }
        lastDraw = t
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        var total: (bytes: UInt64, size: Int64) = (0, 0)
        for item in items {
            let bytes = item.complete && item.size >= 0 ? UInt64(item.size) : item.bytes
            text += "\r\u{1B}[K" + Self.bar(item.label, bytes, item.size, item.state, item.complete) + "\n"
            total.bytes += bytes
            total.size += max(0, item.size)
        }
        text += "\r\u{1B}[K" + Self.bar("total", total.bytes, total.size, "", false) + "\n"
        drawnLines = items.count + 1
        Output.write(2, text)
    }

    static func bar(_ label: String, _ bytes: UInt64, _ size: Int64, _ state: String, _ complete: Bool) -> String {
        let width = 30
        let fraction = size > 0 ? min(1, Double(bytes) / Double(size)) : (complete ? 1 : 0)
        let filled = Int(fraction * Double(width))
        let b = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let padded = label.padding(toLength: 19, withPad: " ", startingAt: 0)
        return "\(padded) [\(b)] \(formatBytes(bytes))/\(size >= 0 ? formatBytes(UInt64(size)) : "?") \(state)"
    }
}

/// Sizes for people, in binary units as udocker prints them: "512 B", "3.4 KB", "1.2 MB", "2.00 GB".
func formatBytes(_ n: UInt64) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return String(format: "%.1f KB", Double(n) / 1024) }
    if n < 1024 * 1024 * 1024 { return String(format: "%.1f MB", Double(n) / 1048576) }
    return String(format: "%.2f GB", Double(n) / 1073741824)
}
