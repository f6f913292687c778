// Finishes the regular files of a layer unpack on worker threads so the unpacking thread goes on to the
// next entry: a small file is created and written whole from a copy of its content; a file written inline
// gets its mtime, its mode where the umask cleared bits, and its close.
#if canImport(Glibc)
import Glibc
#endif

/// A bounded queue of files and the threads that finish them. Creating a file is most of a small-file
/// unpack's time, all of it in the kernel, and two threads create 20,000 files in about 60% of one
/// thread's time on ext4; so files of up to `createLimit` bytes are created here.
///
/// A file is made in two steps: `openat(O_CREAT)`, which the kernel runs under the directory's lock, then
/// writing, timing and closing it, which needs no such lock. Only one worker at a time opens files in a
/// given directory; the others meanwhile write the files it opened, or open files in other directories.
/// Two workers creating in one directory would only queue on its lock, the second spinning on a CPU the
/// unpack needs (and for seconds when ext4 is slow to find free inodes, after a large removal).
///
/// Only `*at()` calls relative to a directory descriptor the unpacker opened with O_NOFOLLOW, with
/// O_CREAT|O_EXCL|O_NOFOLLOW, and descriptor-based calls are made, so nothing here can reach another path.
/// The first failure is kept and handed back by `submit` or `drain`; the files queued after it are still
/// closed (and those not yet created are dropped). A name the filesystem refuses (ENAMETOOLONG, EILSEQ) is
/// not a failure: it is kept for `takeSkips`, and the unpack goes on without that file.

final class FileFinisher: @unchecked Sendable {
    // @unchecked: the stored vars are used only with `mutex` held; a worker moves the jobs it takes out of
    // `queue` or `opened` before letting go of the mutex, and then owns their descriptors and buffers.
    struct Job {
        /// An open file to finish: written inline by the unpacker (`dirFD` -1), or opened here; -1 for a
        /// file still to create.
        var fd: Int32
        var mtime: timespec
        var mode: mode_t
        var chmod: Bool
        /// The writer's entry index, to name the file in an error.
        var entry: Int
        /// For a file to create: its directory (open until the next `drain`), its name and its content,
        /// both allocated by `createJob` and freed by the worker.
        var dirFD: Int32 = -1
        var name: UnsafeMutablePointer<CChar>? = nil
        var content: UnsafeMutableRawPointer? = nil
        /// Up to `pooledSize`, `content` is one of the finisher's reused buffers.
        var size: Int = 0
    }

    struct Failure: Equatable {
        var op: String
        var entry: Int
        var err: Int32
    }

    /// Jobs queued at most (each holds an open descriptor or up to `createLimit` bytes), and how many make
    /// a sleeping worker worth waking; a worker takes at most `batch` at a time.
    static let capacity = 64
    static let batch = 8
    /// Largest file created by the workers; bigger ones are written inline, where a copy would gain nothing.
    static let createLimit = 256 * 1024
    /// Content buffers of this size are reused (most files of a layer are smaller): a fresh allocation for
    /// each file cost page faults on the unpacking thread and frees across threads.
    static let pooledSize = 16 * 1024
    private static let poolLimit = capacity + 4 * batch

    /// Files to create, in submission order.
    private var queue: [Job] = []
    /// Open files to write (if created here) and finish: inline ones, and those a worker has created.
    private var opened: [Job] = []
    /// Directories a worker is creating files in.
    private var claimed: [Int32] = []
    /// Workers holding jobs.
    private var busy = 0
    /// Workers sleeping on `ready`.
    private var idle = 0
    private var stopping = false
    private var failure: Failure?
    private var skips: [Failure] = []
    private var pool: [UnsafeMutableRawPointer] = []
    /// The submitter waits for room, or `drain` for the end: workers wake them only then (and the
    /// submitter only once the queue is half empty), not after every batch.
    private var submitterWaiting = false
    private var drainWaiting = false
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let ready: UnsafeMutablePointer<pthread_cond_t>
    private let space: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []

    /// Two workers at least (one creates while another writes), four at most.
    static var defaultWorkers: Int { min(4, max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }

    init(workers: Int = FileFinisher.defaultWorkers) throws {
        queue.reserveCapacity(FileFinisher.capacity)
        opened.reserveCapacity(FileFinisher.capacity)
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        ready = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        space = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(ready, nil)
        pthread_cond_init(space, nil)
        for _ in 0..<max(1, workers) {
            // Each thread owns a reference until it returns, so this object outlives it whatever happens.
            let me = Unmanaged.passRetained(self)
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                if let arg {
                    let finisher = Unmanaged<FileFinisher>.fromOpaque(arg)
                    finisher.takeUnretainedValue().run()
                    finisher.release()
                }
                return nil
            }, me.toOpaque())
            if rc != 0 {
                me.release()
                if threads.isEmpty { throw CASError.io("pthread_create", "layer file finishing thread", rc) }
                break   // fewer workers than asked is still correct
            }
            threads.append(tid)
        }
    }

    deinit {
        for b in pool { b.deallocate() }
        pthread_cond_destroy(ready)
        pthread_cond_destroy(space)
        pthread_mutex_destroy(mutex)
        ready.deallocate()
        space.deallocate()
        mutex.deallocate()
    }

    /// A job that creates `name` in `dirFD` with `size` bytes of content, which the caller fills in
    /// through `job.content` before submitting (nil when `size` is 0). Pass it to `submit` or `release`.
    func createJob(dirFD: Int32, name: String, size: Int, mtime: timespec, mode: mode_t, chmod: Bool,
                   entry: Int) -> Job {
        var job = Job(fd: -1, mtime: mtime, mode: mode, chmod: chmod, entry: entry)
        job.dirFD = dirFD
        job.name = name.withCString { strdup($0) }
        job.size = size
        if size > FileFinisher.pooledSize {
            job.content = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        } else if size > 0 {
            pthread_mutex_lock(mutex)
            let reused = pool.popLast()
            pthread_mutex_unlock(mutex)
            job.content = reused ?? UnsafeMutableRawPointer.allocate(byteCount: FileFinisher.pooledSize, alignment: 16)
        }
        return job
    }

    /// Frees what `createJob` allocated.
    func release(_ job: Job) {
        pthread_mutex_lock(mutex)
        recycle(job)
        pthread_mutex_unlock(mutex)
    }

    /// `release` with `mutex` held.
    private func recycle(_ job: Job) {
        free(job.name)
        if let content = job.content {
            if job.size <= FileFinisher.pooledSize && pool.count < FileFinisher.poolLimit { pool.append(content) } else { content.deallocate() }
        }
    }

    /// Queues a file (one to create, or an open one to finish), waiting while the queue is full. Returns
    /// the first failure so far instead of queueing, in which case the caller still owns `job.fd` (a job
    /// to create is released here).
    func submit(_ job: Job) -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while queue.count + opened.count >= FileFinisher.capacity && failure == nil {
            if idle > 0 { pthread_cond_signal(ready) }
            submitterWaiting = true
            pthread_cond_wait(space, mutex)
            submitterWaiting = false
        }
        if let failure {
            if job.fd < 0 { recycle(job) }
            return failure
        }
        if job.fd >= 0 { opened.append(job) } else { queue.append(job) }
        if idle > 0 && queue.count + opened.count >= FileFinisher.batch { pthread_cond_signal(ready) }
        return nil
    }

    /// Waits until every queued file is finished; returns the first failure, if any.
    func drain() -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !queue.isEmpty || !opened.isEmpty || busy > 0 {
            if idle > 0 { pthread_cond_broadcast(ready) }
            drainWaiting = true
            pthread_cond_wait(space, mutex)
            drainWaiting = false
        }
        return failure
    }

    /// The directory descriptors files still to be created are queued in, or being created in now.
    func directoriesInUse() -> Set<Int32> {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var out = Set(claimed)
        for job in queue { out.insert(job.dirFD) }
        return out
    }

    /// Files not created because the filesystem refused their names, since the last call.
    func takeSkips() -> [Failure] {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let out = skips
        skips = []
        return out
    }

    /// Finishes what is queued and stops the threads. Safe to call more than once.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(ready)
        let ts = threads
        threads = []
        pthread_mutex_unlock(mutex)
        for t in ts { pthread_join(t, nil) }
    }

    // MARK: - Workers

    /// With `mutex` held: moves the next work into `taken`; returns the directory it claimed to create
    /// files in, -1 for files to write and finish, nil when there is nothing this worker may do now.
    /// Creating comes first (it is the slower step, and serial per directory) unless opened files pile up.
    private func take(into taken: inout [Job]) -> Int32? {
        if opened.count < 2 * FileFinisher.batch,
           let start = queue.firstIndex(where: { !claimed.contains($0.dirFD) }) {
            let dir = queue[start].dirFD
            var end = start
            while end < queue.count && end - start < FileFinisher.batch && queue[end].dirFD == dir { end += 1 }
            taken.append(contentsOf: queue[start..<end])
            queue.removeSubrange(start..<end)
            claimed.append(dir)
            return dir
        }
        if !opened.isEmpty {
            let n = min(opened.count, FileFinisher.batch)
            taken.append(contentsOf: opened[0..<n])
            opened.removeFirst(n)
            return -1
        }
        return nil
    }

    /// With `mutex` held: there are files a worker other than those busy could take now.
    private var workForAnother: Bool {
        !opened.isEmpty || queue.contains { !claimed.contains($0.dirFD) }
    }

    private func run() {
        var taken = [Job]()
        taken.reserveCapacity(FileFinisher.batch)
        var created = [Job]()
        created.reserveCapacity(FileFinisher.batch)
        var done = [Job]()
        done.reserveCapacity(FileFinisher.batch)
        var skipped = [Failure]()
        let times = UnsafeMutablePointer<timespec>.allocate(capacity: 2)
        defer { times.deallocate() }
        times[0] = timespec(tv_sec: 0, tv_nsec: LayerTreeWriter.utimeOmit)   // atime left alone
        pthread_mutex_lock(mutex)
        while true {
            taken.removeAll(keepingCapacity: true)
            guard let dir = take(into: &taken) else {
                if stopping && queue.isEmpty && opened.isEmpty { break }
                idle += 1
                pthread_cond_wait(ready, mutex)
                idle -= 1
                continue
            }
            busy += 1
            // Another worker can take what is left while this one works.
            if idle > 0 && workForAnother { pthread_cond_signal(ready) }
            if submitterWaiting && queue.count + opened.count <= FileFinisher.capacity / 2 {
                pthread_cond_broadcast(space)
            }
            let failedBefore = failure != nil
            pthread_mutex_unlock(mutex)

            var first: Failure?
            if dir >= 0 {
                for var job in taken {
                    if !failedBefore && first == nil {
                        job.fd = open(job, first: &first, skipped: &skipped)
                    }
                    if job.fd >= 0 { created.append(job) } else { done.append(job) }
                }
            } else {
                for job in taken {
                    if job.dirFD >= 0 && !failedBefore && first == nil { write(job, first: &first) }
                    finish(job, times: times, first: &first)
                    if job.dirFD >= 0 { done.append(job) }
                }
            }

            pthread_mutex_lock(mutex)
            if dir >= 0 {
                if let i = claimed.firstIndex(of: dir) { claimed.remove(at: i) }
                opened.append(contentsOf: created)
                created.removeAll(keepingCapacity: true)
            }
            for job in done { recycle(job) }
            done.removeAll(keepingCapacity: true)
            busy -= 1
            let newFailure = failure == nil && first != nil
            if failure == nil { failure = first }
            if !skipped.isEmpty {
                skips.append(contentsOf: skipped)
                skipped.removeAll()
            }
            if idle > 0 {
                // Once stopping, every worker must see the end (it may have slept while files were queued).
                if stopping { pthread_cond_broadcast(ready) } else if workForAnother { pthread_cond_signal(ready) }
            }
            if newFailure || (drainWaiting && queue.isEmpty && opened.isEmpty && busy == 0) {
                pthread_cond_broadcast(space)
            }
        }
        pthread_mutex_unlock(mutex)
    }

    /// Creates a queued file; returns its descriptor, or -1 with the failure or skip recorded.
    private func open(_ job: Job, first: inout Failure?, skipped: inout [Failure]) -> Int32 {
        guard let name = job.name else { return -1 }
        let fd = openat(job.dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, job.mode)
        if fd < 0 {
            let err = errno
            if err == ENAMETOOLONG || err == EILSEQ {
                skipped.append(Failure(op: "open", entry: job.entry, err: err))
            } else {
                first = Failure(op: "open", entry: job.entry, err: err)
            }
        }
        return fd
    }

    private func write(_ job: Job, first: inout Failure?) {
        guard let content = job.content else { return }
        var done = 0
        while done < job.size {
            let w = pwrite(job.fd, content + done, job.size - done, off_t(done))
            if w < 0 {
                if errno == EINTR { continue }
                first = Failure(op: "write", entry: job.entry, err: errno)
                return
            }
            done += w
        }
    }

    private func finish(_ job: Job, times: UnsafeMutablePointer<timespec>, first: inout Failure?) {
        times[1] = job.mtime
        if futimens(job.fd, times) != 0 && first == nil {
            first = Failure(op: "set times of", entry: job.entry, err: errno)
        }
        if job.chmod && fchmod(job.fd, job.mode) != 0 && first == nil {
            first = Failure(op: "chmod", entry: job.entry, err: errno)
        }
        if close(job.fd) != 0 && errno != EINTR && first == nil {
            first = Failure(op: "close", entry: job.entry, err: errno)
        }
    }
}
