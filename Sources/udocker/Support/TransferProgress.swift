// The progress display of transfers (pull, push): on a terminal a bar per item and a total bar,
// redrawn in place and fitted to the terminal's width; otherwise one line per item when it is done;
// nothing with -q. Thread-safe: events arrive from the transfer threads.
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
        var rows = [Row]()
        var total = Row(label: "total", bytes: 0, size: 0, state: "", complete: false)
        for item in items {
            let bytes = item.complete && item.size >= 0 ? UInt64(item.size) : item.bytes
            rows.append(Row(label: item.label, bytes: bytes, size: item.size, state: item.state, complete: item.complete))
            total.bytes += bytes
            total.size += max(0, item.size)
        }
        for line in Self.render(rows + [total], width: Self.terminalWidth()) { text += "\r\u{1B}[K" + line + "\n" }
        drawnLines = items.count + 1
        Output.write(2, text)
    }

    /// One line of the bars.
    struct Row {
        var label: String
        var bytes: UInt64
        /// Negative when unknown.
        var size: Int64
        var state: String
        var complete: Bool

        var fraction: Double { size > 0 ? min(1, Double(bytes) / Double(size)) : (complete ? 1 : 0) }
        var amount: String { " \(formatBytes(bytes))/\(size >= 0 ? formatBytes(UInt64(size)) : "?")" }
        var shortLabel: String { label.hasPrefix("sha256:") ? String(label.dropFirst(7)) : label }
    }

    /// The bar lines, each in fewer than `width` columns (the last column is left free: writing it
    /// makes some terminals wrap), all in one layout so the bars line up, and with room kept for the
    /// longest sizes and state so the layout stays put while the numbers grow. 80 columns: a
    /// 19-column label ("sha256:" and 12 hex digits) and a 25-column bar; narrower, the bar shrinks,
    /// then the labels lose "sha256:", then the states go, then the sizes become percentages; below
    /// about 30 columns the lines are cut.
    static func render(_ rows: [Row], width: Int) -> [String] {
        let room = max(1, width - 1)
        // " 1023.9 MB/1023.9 MB" and " downloading".
        let amountRoom = 20, stateRoom = 12
        typealias Tier = (short: Bool, labelWidth: Int, minBar: Int, tailRoom: Int, tail: (Row) -> String)
        let tiers: [Tier] = [
            (false, 19, 10, amountRoom + stateRoom, { $0.amount + ($0.state.isEmpty ? "" : " " + $0.state) }),
            (true, 12, 10, amountRoom + stateRoom, { $0.amount + ($0.state.isEmpty ? "" : " " + $0.state) }),
            (true, 12, 5, amountRoom, { $0.amount }),
            (true, 12, 5, 5, { r in
                let p = String(Int(r.fraction * 100))
                return String(repeating: " ", count: max(0, 4 - p.count)) + p + "%"
            }),
        ]
        for tier in tiers {
            let tails = rows.map(tier.tail)
            let tailRoom = max(tier.tailRoom, tails.map(\.count).max() ?? 0)
            let barWidth = min(30, room - tier.labelWidth - 3 - tailRoom)
            guard barWidth >= tier.minBar else { continue }
            return zip(rows, tails).map { r, tail in
                let filled = Int(r.fraction * Double(barWidth))
                let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: barWidth - filled)
                let name = tier.short ? r.shortLabel : r.label
                return name.padding(toLength: tier.labelWidth, withPad: " ", startingAt: 0) + " [" + bar + "]" + tail
            }
        }
        return rows.map { String(($0.shortLabel.padding(toLength: 12, withPad: " ", startingAt: 0) + $0.amount).prefix(room)) }
    }

    /// The terminal's columns: $COLUMNS when set (as Python's shutil and ls read it), else the size
    /// of the terminal on stderr, else 80. Asked at every redraw, so a resized window is followed.
    static func terminalWidth() -> Int {
        if let c = getenv("COLUMNS").flatMap({ Int(String(cString: $0)) }), c > 0 { return c }
        var size = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }
}

/// Sizes for people, in binary units as udocker prints them: "512 B", "3.4 KB", "1.2 MB", "2.00 GB".
func formatBytes(_ n: UInt64) -> String {
    if n < 1024 { return "\(n) B" }
    if n < 1024 * 1024 { return String(format: "%.1f KB", Double(n) / 1024) }
    if n < 1024 * 1024 * 1024 { return String(format: "%.1f MB", Double(n) / 1048576) }
    return String(format: "%.2f GB", Double(n) / 1073741824)
}
