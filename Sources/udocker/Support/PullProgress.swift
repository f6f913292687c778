// Shows a pull's progress: on a terminal a bar per layer and a total bar, redrawn in place; otherwise
// one line per layer when it is done; nothing with -q. Events arrive from the download threads.
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

final class PullProgress: @unchecked Sendable {
    enum Style { case bars, lines, none }

    private let style: Style
    private let lock = NSLock()
    private var layers: [(digest: String, size: Int64, bytes: UInt64, state: String)] = []
    private var drawnLines = 0
    private var lastDraw = 0.0

    init(style: Style) { self.style = style }

    /// Bars when stderr is a terminal, lines otherwise, none when quiet.
    static func forOutput(quiet: Bool) -> PullProgress {
        PullProgress(style: quiet ? .none : isatty(2) == 1 ? .bars : .lines)
    }

    func handle(_ e: PullEvent) {
        guard style != .none else { return }
        lock.lock()
        defer { lock.unlock() }
        switch e {
        case .plan(_, let list):
            layers = list.map { (String($0.digest.description.prefix(19)), $0.size, 0, "waiting") }
            draw(force: true)
        case .layerProgress(let i, let bytes):
            guard i < layers.count else { return }
            layers[i].bytes = bytes
            layers[i].state = "downloading"
            draw(force: false)
        case .layerDone(let i, let digest, let size, let downloaded):
            guard i < layers.count else { return }
            layers[i].bytes = size
            if layers[i].size < 0 { layers[i].size = Int64(size) }
            layers[i].state = downloaded ? "done" : "in store"
            if style == .lines {
                Output.write(2, "\(digest): " + (downloaded ? "downloaded \(Self.size(size)) and unpacked" : "already in the store") + "\n")
            } else {
                draw(force: true)
            }
        }
    }

    /// Redraws the bars in place (at most 10 times a second unless forced).
    private func draw(force: Bool) {
        guard style == .bars else { return }
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let t = Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        if !force && t - lastDraw < 0.1 { return }
        lastDraw = t
        var text = drawnLines > 0 ? "\u{1B}[\(drawnLines)A" : ""
        var total: (bytes: UInt64, size: Int64) = (0, 0)
        for l in layers {
            text += "\r\u{1B}[K" + Self.bar(l.digest, l.bytes, l.size, l.state) + "\n"
            total.bytes += l.bytes
            total.size += max(0, l.size)
        }
        text += "\r\u{1B}[K" + Self.bar("total", total.bytes, total.size, "") + "\n"
        drawnLines = layers.count + 1
        Output.write(2, text)
    }

    static func bar(_ label: String, _ bytes: UInt64, _ size: Int64, _ state: String) -> String {
        let width = 30
        let fraction = size > 0 ? min(1, Double(bytes) / Double(size)) : (state == "done" || state == "in store" ? 1 : 0)
        let filled = Int(fraction * Double(width))
        let b = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let padded = label.padding(toLength: 19, withPad: " ", startingAt: 0)
        return "\(padded) [\(b)] \(Self.size(bytes))/\(size >= 0 ? Self.size(UInt64(size)) : "?") \(state)"
    }

    static func size(_ n: UInt64) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1024 * 1024 { return String(format: "%.1f KB", Double(n) / 1024) }
        if n < 1024 * 1024 * 1024 { return String(format: "%.1f MB", Double(n) / 1048576) }
        return String(format: "%.2f GB", Double(n) / 1073741824)
    }
}
