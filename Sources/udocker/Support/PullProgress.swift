// A pull's progress: layer events from the download threads shown by TransferProgress.
import Registry

struct PullProgress: Sendable {
    let display: TransferProgress

    /// Bars when stderr is a terminal, lines otherwise, none when quiet.
    static func forOutput(quiet: Bool) -> PullProgress { PullProgress(display: TransferProgress(quiet: quiet)) }

    func handle(_ e: PullEvent) {
        switch e {
        case .plan(_, let list):
            display.plan(list.map { ($0.digest.description, $0.size) })
        case .layerProgress(let i, let bytes):
            display.progress(i, bytes: bytes, state: "downloading")
        case .layerWaiting(let i):
            display.progress(i, bytes: 0, state: "waiting for another pull")
        case .layerDone(let i, let digest, let size, let downloaded):
            display.done(i, size: size, state: downloaded ? "done" : "in store", complete: true,
                         line: "\(digest): " + (downloaded ? "downloaded \(formatBytes(size)) and unpacked" : "already in the store"))
        }
    }
}
