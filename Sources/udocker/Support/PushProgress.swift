// Shows a push's progress: on a terminal a bar per blob and a total bar (drawn like pull's); otherwise
// one line per blob when it is done; nothing with -q. Events arrive from the upload threads.
import Foundation
import Registry
#if canImport(Glibc)
import Glibc
#endif

final class PushProgress: @unchecked Sendable {
    private let style: PullProgress.Style
    private let lock = NSLock()
    private var blobs: [(digest: String, size: UInt64, bytes: UInt64, state: String)] = []
    private var drawnLines = 0
    private var lastDraw = 0.0

    init(style: PullProgress.Style) { self.style = style }

    /// Bars when stderr is a terminal, lines otherwise, none when quiet.
    static func forOutput(quiet: Bool) -> PushProgress {
        PushProgress(style: quiet ? .none : isatty(2) == 1 ? .bars : .lines)
    }

    func handle(_ e: PushEvent) {
        guard style != .none else { return }
        lock.lock()
        defer { lock.unlock() }
        switch e {
        case .plan(_, let list):
            blobs = list.map { (String($0.digest.description.prefix(19)), $0.size, 0, "waiting") }
            draw(force: true)
        case .blobProgress(let i, let bytes):
            guard i < blobs.count else { return }
            blobs[i].bytes = bytes
            blobs[i].state = "uploading"
            draw(force: false)
        case .blobDone(let i, let digest, let size, let outcome):
            guard i < blobs.count else { return }
            blobs[i].bytes = size
            let text: String
            switch outcome {
            case .existed: blobs[i].state = "exists"; text = "already in the registry"
            case .mounted(let from): blobs[i].state = "mounted"; text = "mounted from \(from)"
            case .uploaded: blobs[i].state = "done"; text = "uploaded \(PullProgress.size(size))"
            }
            if style == .lines {
                Output.write(2, "\(digest): \(text)\n")
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
        var total: (bytes: UInt64, size: UInt64) = (0, 0)
        for b in blobs {
            // A skipped or mounted blob counts as complete.
            let bytes = b.state == "exists" || b.state == "mounted" ? b.size : b.bytes
            text += "\r\u{1B}[K" + PullProgress.bar(b.digest, bytes, Int64(b.size), b.state) + "\n"
            total.bytes += bytes
            total.size += b.size
        }
        text += "\r\u{1B}[K" + PullProgress.bar("total", total.bytes, Int64(total.size), "") + "\n"
        drawnLines = blobs.count + 1
        Output.write(2, text)
    }
}
