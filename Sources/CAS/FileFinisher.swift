// Finishes the regular files of a layer unpack on worker threads so the unpacking thread goes on to the
// next entry: a small file is created and written whole from a copy of its content; a file written inline
// gets its mtime, its mode where the umask cleared bits, and its close.
#if canImport(Glibc)
import Glibc
#endif

/// A bounded queue of files and the threads that finish them. Creating a file is most of a small-file
/// unpack's time, all of it in the kernel, and two threads create 20,000 files in about 60% of one
/// thread's time on ext4, even in one directory; so files of up to `createLimit` bytes are created here.
/// Only `*at()` calls relative to a directory descriptor the unpacker opened with O_NOFOLLOW, with
/// O_CREAT|O_EXCL|O_NOFOLLOW, and descriptor-based calls are made, so nothing here can reach another path.
/// The first failure is kept and handed back by `submit` or `drain`; the files queued after it are still
/// closed (and those to create are dropped). A name the filesystem refuses (ENAMETOOLONG, EILSEQ) is not
/// a failure: it is kept for `takeSkips`, and the unpack goes on without that file.
final class FileFinisher: @unchecked Sendable {
    // @unchecked: the stored vars and the ring's slots are used only with `mutex` held; a worker copies
    // the jobs it takes out before letting go of the mutex, and then owns their buffers.
    struct Job {
        /// A file written inline, to finish; -1 for a file to create from `content`.
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
        var size: Int = 0
    }

    struct Failure: Equatable {
        var op: String
        var entry: Int
        var err: Int32
    }

    /// Queued jobs at most (each holds an open descriptor or up to `createLimit` bytes), and how many
    /// make a sleeping worker worth waking; a worker takes at most `batch` at a time.
    static let capacity = 64
    static let batch = 8
    /// Largest file created by the workers; bigger ones are written inline, where a copy would gain nothing.
    static let createLimit = 256 * 1024

    private let ring: UnsafeMutablePointer<Job>
    private var head = 0
    private var count = 0
    /// Workers holding jobs taken out of the ring.
    private var busy = 0
    /// Workers sleeping on `ready`.
    private var idle = 0
    private var stopping = false
    private var failure: Failure?
    private var skips: [Failure] = []
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let ready: UnsafeMutablePointer<pthread_cond_t>
    private let space: UnsafeMutablePointer<pthread_cond_t>
    private var threads: [pthread_t] = []

    /// Two workers at least (the kernel's file creation is what they share out), four at most.
    static var defaultWorkers: Int { min(4, max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))) }

    init(workers: Int = FileFinisher.defaultWorkers) throws {
        ring = UnsafeMutablePointer<Job>.allocate(capacity: FileFinisher.capacity)
        ring.initialize(repeating: Job(fd: -1, mtime: timespec(), mode: 0, chmod: false, entry: -1),
                        count: FileFinisher.capacity)
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
        ring.deinitialize(count: FileFinisher.capacity)
        ring.deallocate()
        pthread_cond_destroy(ready)
        pthread_cond_destroy(space)
        pthread_mutex_destroy(mutex)
        ready.deallocate()
        space.deallocate()
        mutex.deallocate()
    }

    /// A job that creates `name` in `dirFD` with `size` bytes of content, which the caller fills in
    /// through `job.content` before submitting (nil when `size` is 0).
    static func createJob(dirFD: Int32, name: String, size: Int, mtime: timespec, mode: mode_t, chmod: Bool,
                          entry: Int) -> Job {
        var job = Job(fd: -1, mtime: mtime, mode: mode, chmod: chmod, entry: entry)
        job.dirFD = dirFD
        job.name = name.withCString { strdup($0) }
        if size > 0 { job.content = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16) }
        job.size = size
        return job
    }

    /// Frees what `createJob` allocated.
    static func release(_ job: Job) {
        free(job.name)
        job.content?.deallocate()
    }

    /// Queues a file, waiting while the queue is full. Returns the first failure so far instead of
    /// queueing, in which case the caller still owns `job.fd` (a job to create is released here).
    func submit(_ job: Job) -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count == FileFinisher.capacity && failure == nil {
            if idle > 0 { pthread_cond_signal(ready) }
            pthread_cond_wait(space, mutex)
        }
        if let failure {
            if job.fd < 0 { FileFinisher.release(job) }
            return failure
        }
        ring[(head + count) % FileFinisher.capacity] = job
        count += 1
        if idle > 0 && count >= FileFinisher.batch { pthread_cond_signal(ready) }
        return nil
    }

    /// Waits until every queued file is finished; returns the first failure, if any.
    func drain() -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count > 0 || busy > 0 {
            if idle > 0 && count > 0 { pthread_cond_broadcast(ready) }
            pthread_cond_wait(space, mutex)
        }
        return failure
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

    private func run() {
        var taken = [Job]()
        taken.reserveCapacity(FileFinisher.batch)
        let times = UnsafeMutablePointer<timespec>.allocate(capacity: 2)
        defer { times.deallocate() }
        times[0] = timespec(tv_sec: 0, tv_nsec: LayerTreeWriter.utimeOmit)   // atime left alone
        var skipped = [Failure]()
        pthread_mutex_lock(mutex)
        while true {
            while count == 0 && !stopping {
                idle += 1
                pthread_cond_wait(ready, mutex)
                idle -= 1
            }
            if count == 0 { break }
            taken.removeAll(keepingCapacity: true)
            let n = min(count, FileFinisher.batch)
            for i in 0..<n { taken.append(ring[(head + i) % FileFinisher.capacity]) }
            head = (head + n) % FileFinisher.capacity
            count -= n
            busy += 1
            // Another worker can take what is left while this one works.
            if count > 0 && idle > 0 { pthread_cond_signal(ready) }
            pthread_cond_broadcast(space)
            let failedBefore = failure != nil
            pthread_mutex_unlock(mutex)

            var first: Failure?
            for job in taken {
                if job.fd >= 0 {
                    finish(job, times: times, first: &first)
                } else {
                    if !failedBefore && first == nil { create(job, times: times, first: &first, skipped: &skipped) }
                    FileFinisher.release(job)
                }
            }

            pthread_mutex_lock(mutex)
            busy -= 1
            if failure == nil { failure = first }
            if !skipped.isEmpty {
                skips.append(contentsOf: skipped)
                skipped.removeAll()
            }
            pthread_cond_broadcast(space)
        }
        pthread_mutex_unlock(mutex)
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

    private func create(_ job: Job, times: UnsafeMutablePointer<timespec>, first: inout Failure?,
                        skipped: inout [Failure]) {
        guard let name = job.name else { return }
        let fd = openat(job.dirFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, job.mode)
        if fd < 0 {
            let err = errno
            if err == ENAMETOOLONG || err == EILSEQ {
                skipped.append(Failure(op: "open", entry: job.entry, err: err))
            } else {
                first = Failure(op: "open", entry: job.entry, err: err)
            }
            return
        }
        if let content = job.content {
            var done = 0
            while done < job.size {
                let w = pwrite(fd, content + done, job.size - done, off_t(done))
                if w < 0 {
                    if errno == EINTR { continue }
                    first = Failure(op: "write", entry: job.entry, err: errno)
                    _ = close(fd)
                    return
                }
                done += w
            }
        }
        var finishing = job
        finishing.fd = fd
        finish(finishing, times: times, first: &first)
    }
}
