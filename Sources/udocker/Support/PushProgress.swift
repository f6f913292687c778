// A push's progress: blob events from the upload threads shown by TransferProgress.
import Registry

struct PushProgress: Sendable {
    let display: TransferProgress

    /// Bars when stderr is a terminal, lines otherwise, none when quiet.
    static func forOutput(quiet: Bool) -> PushProgress { PushProgress(display: TransferProgress(quiet: quiet)) }

    func handle(_ e: PushEvent) {
        switch e {
        case .plan(_, let list):
            display.plan(list.map { ($0.digest.description, Int64($0.size)) })
        case .blobProgress(let i, let bytes):
            display.progress(i, bytes: bytes, state: "uploading")
        case .blobDone(let i, let digest, let size, let outcome):
            switch outcome {
            case .existed:
                display.done(i, size: size, state: "exists", complete: true, line: "\(digest): already in the registry")
            case .mounted(let from):
                display.done(i, size: size, state: "mounted", complete: true, line: "\(digest): mounted from \(from)")
            case .uploaded:
                display.done(i, size: size, state: "done", complete: true, line: "\(digest): uploaded \(formatBytes(size))")
            }
        }
    }
}
