// Walks a directory tree on several threads, one directory at a time: the unit `create` and `clone`
// share out, since the kernel serialises creating entries inside one directory but not across them.
#if canImport(Glibc)
import Glibc
#endif

/// Runs `fill` on a tree's directories on up to `threads` threads (the calling one included). `fill`
/// handles one directory and returns its subdirectories, which any thread may then take. After the first
/// error no directory is taken any more; the units never filled are handed to `discard` (to close their
/// descriptors), and `run` rethrows the error once every thread has stopped. It also tells the threads
/// which of them copies a file with several names (`linkFirstCopy`).
final class ParallelWalk<Unit>: @unchecked Sendable {
    // @unchecked: `pending`, `active`, `failure` and the closures are used only with `mutex` held, or by
    // the threads of one `run`, which sets them before starting the threads and clears them after.
    let threads: Int
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var pending: [Unit] = []
    private var active = 0
    private var failure: Error?
    private var fill: ((Unit, Int) throws -> [Unit])?
    private var discard: ((Unit) -> Void)?
    /// Files with several names that are copied: being copied by some thread, or where the copy is.
    private enum Copy { case copying, copied(String) }
    private var copies: [AnyHashable: Copy] = [:]

    init(threads: Int = WalkThreads.default) {
        self.threads = max(1, threads)
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// Fills `roots` and everything `fill` returns; `fill(unit, thread)` gets the index of the thread
    /// running it (0 ..< `threads`), for state of its own. If `fill` throws, it has released what it made.
    func run(_ roots: [Unit], fill: (Unit, Int) throws -> [Unit], discard: @escaping (Unit) -> Void) throws {
        try withoutActuallyEscaping(fill) { fill in
            pending = roots
            failure = nil
            self.fill = fill
            self.discard = discard
            defer {
                self.fill = nil
                self.discard = nil
            }
            var started: [pthread_t] = []
            for index in 1..<threads {
                var tid = pthread_t()
                let box = Unmanaged.passRetained(ThreadStart(walk: self, index: index))
                let rc = pthread_create(&tid, nil, { arg in
                    if let arg {
                        let start = Unmanaged<AnyObject>.fromOpaque(arg).takeRetainedValue()
                        (start as? ThreadStartable)?.start()
                    }
                    return nil
                }, box.toOpaque())
                if rc != 0 {
                    box.release()
                    break   // fewer threads is still correct
                }
                started.append(tid)
            }
            work(thread: 0)
            for t in started { pthread_join(t, nil) }
            if let failure { throw failure }
        }
    }

    enum FirstCopy { case linked, yours, notLinked }

    /// For a file with several names (one inode) that is copied rather than linked, so that its other
    /// names become links to the first copy: links `name` in `dirFD` to that copy once it is made
    /// (waiting while another thread makes it; its path is relative to `rootFD`) and answers `.linked`;
    /// `.yours` when the caller is to make the copy (then it reports with `copied`); `.notLinked` when
    /// the link failed (then the caller makes a copy of its own).
    func linkFirstCopy(of key: AnyHashable, rootFD: Int32, into dirFD: Int32, _ name: String) -> FirstCopy {
        pthread_mutex_lock(mutex)
        while case .copying? = copies[key] { pthread_cond_wait(changed, mutex) }
        guard case .copied(let first)? = copies[key] else {
            copies[key] = .copying
            pthread_mutex_unlock(mutex)
            return .yours
        }
        pthread_mutex_unlock(mutex)
        return linkat(rootFD, first, dirFD, name, 0) == 0 ? .linked : .notLinked
    }

    /// Reports the copy `linkFirstCopy` handed to the caller: made at `path`, or failed (nil: the next
    /// name to come makes it).
    func copied(_ key: AnyHashable, at path: String?) {
        pthread_mutex_lock(mutex)
        copies[key] = path.map { .copied($0) }
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }

    private final class ThreadStart: ThreadStartable {
        let walk: ParallelWalk
        let index: Int
        init(walk: ParallelWalk, index: Int) { self.walk = walk; self.index = index }
        func start() { walk.work(thread: index) }
    }

    /// One thread's loop: fill directories until none is left and none is being filled (whose
    /// subdirectories could still come), or until a thread has failed.
    private func work(thread: Int) {
        pthread_mutex_lock(mutex)
        while failure == nil {
            guard let unit = pending.popLast(), let fill else {
                if active == 0 { break }
                pthread_cond_wait(changed, mutex)
                continue
            }
            active += 1
            pthread_mutex_unlock(mutex)
            var made: [Unit] = []
            var error: Error?
            do { made = try fill(unit, thread) } catch let e { error = e }
            pthread_mutex_lock(mutex)
            active -= 1
            if let error, failure == nil { failure = error }
            if failure == nil {
                pending += made
            } else {
                for u in made { discard?(u) }
            }
            pthread_cond_broadcast(changed)
        }
        if failure != nil {
            for u in pending { discard?(u) }
            pending = []
        }
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(mutex)
    }
}

/// How many threads a walk uses unless told: one per CPU, at most four (creating and linking files
/// contend in the filesystem's journal beyond that).
enum WalkThreads {
    static var `default`: Int { min(4, max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }
}

/// What a walk's thread runs (a protocol, so the C entry point needs no generic parameter).
private protocol ThreadStartable: AnyObject {
    func start()
}
