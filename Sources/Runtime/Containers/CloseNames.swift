// `run NAME` where NAME is neither a container nor an image: one error saying both, with the container
// and image names close to NAME (what `ps` and `images` would offer for a typo).
import Registry

public enum CloseNames {
    /// The candidates within edit distance 2 of `typed` (1 for names of up to 3 characters), or that
    /// start with it or that it starts with (the shorter of 3 characters or more), closest first.
    /// Case is ignored (image names are lowercase, container names need not be).
    public static func matching(_ typed: String, among candidates: [String]) -> [String] {
        let lower = typed.lowercased()
        let t = Array(lower)
        guard !t.isEmpty else { return [] }
        let limit = t.count <= 3 ? 1 : 2
        var found: [(name: String, distance: Int)] = []
        for c in Set(candidates) where c != typed {
            let lc = c.lowercased()
            let prefix = min(t.count, lc.count) >= 3 && (lc.hasPrefix(lower) || lower.hasPrefix(lc))
            let d = distance(t, Array(lc), limit: limit)
            if d <= limit || prefix { found.append((c, d)) }
        }
        return found.sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }.map(\.name)
    }

    /// Levenshtein distance, or `limit + 1` once it is sure to exceed `limit`.
    static func distance(_ a: [Character], _ b: [Character], limit: Int) -> Int {
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var row = [i + 1]
            for (j, cb) in b.enumerated() {
                row.append(min(previous[j + 1] + 1, row[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
            }
            if let least = row.min(), least > limit { return limit + 1 }
            previous = row
        }
        return previous[b.count]
    }
}

extension ContainerStore {
    /// The error for `run NAME` when NAME is no container and no local image, and was not looked for
    /// in the registry (--pull=never).
    public func noContainerOrLocalImage(_ name: String) -> RuntimeError {
        noContainerOrImage(name, why: "there is no local image of that name")
    }

    /// The error for `run NAME` when NAME is no container and the pull's failure `cause` says it is no
    /// image either (the registry has no such manifest or repository, or NAME cannot name an image);
    /// nil when `cause` is another failure (network, credentials given, …), which stays as it is.
    public func noContainerOrImage(_ name: String, cause: any Error) -> RuntimeError? {
        let why: String
        switch cause {
        case let e as RegistryError:
            switch e {
            case .notFound(let what, let registry):
                why = "the registry has no such image (\(what) not found in \(registry))"
            case .unauthorized(let registry, false, _):
                why = "\(registry.displayName) refused access to it (it does not exist there or is private: 'udocker login --registry=\(registry.loginName)' if you have an account)"
            default:
                return nil
            }
        case let e as RuntimeError:
            guard case .invalidImageName(_, let reason) = e else { return nil }
            why = "it cannot name an image (\(reason))"
        default:
            return nil
        }
        return noContainerOrImage(name, why: why)
    }

    private func noContainerOrImage(_ name: String, why: String) -> RuntimeError {
        let all = (try? containers()) ?? []
        let containerNames = CloseNames.matching(name, among: all.flatMap { $0.names + [$0.id] })
        // An image is close by its name with or without the tag ("busybx" and "busybox:latest").
        let imageList = (try? images.images()) ?? []
        let close = Set(CloseNames.matching(name, among: imageList.flatMap { [$0.name.description, $0.name.name] }))
        let imageNames = imageList.filter { close.contains($0.name.description) || close.contains($0.name.name) }
            .map(\.name.description)
        return .noContainerOrImage(name: name, why: why, containers: containerNames, images: imageNames)
    }
}
