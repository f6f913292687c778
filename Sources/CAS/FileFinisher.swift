// Finishes the regular files of a layer unpack on a second thread: sets each file's mtime (futimens),
// its mode where the umask cleared bits (fchmod) and closes it, so the unpacking thread goes on to the
// next entry. Those two or three calls were a tenth of the unpack of a layer of small files.
#if canImport(Glibc)
import Glibc
#endif

/// A bounded queue of open descriptors of files whose content is fully written, and the thread that
/// finishes them. Only descriptor-based calls are made, on files the unpacker itself created, so nothing
/// here can reach another path. The first failure is kept and handed back by `submit` or `drain`; the
/// files queued after it are still closed.
final class FileFinisher: @unchecked Sendable {
    // @unchecked: the stored vars and the ring's slots are used only with `mutex` held; the thread
    // copies the jobs it takes out before letting go of the mutex.
    struct Job {
        var fd: Int32
        var mtime: timespec
        var mode: mode_t
        var chmod: Bool
        /// The writer's entry index, to name the file in an error.
        var entry: Int
    }

    struct Failure: Equatable {
        var op: String
        var entry: Int
        var err: Int32
    }

    /// Queued descriptors at most (each is open until finished), and how many make the thread worth waking.
    static let capacity = 64
    static let batch = 16

    private let ring: UnsafeMutablePointer<Job>
    private var head = 0
    private var count = 0
    /// The thread holds jobs it took out of the ring.
    private var busy = false
    /// The thread sleeps on `ready`.
    private var idle = false
    private var stopping = false
    private var failure: Failure?
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let ready: UnsafeMutablePointer<pthread_cond_t>
    private let space: UnsafeMutablePointer<pthread_cond_t>
    private var thread: pthread_t?

    init() throws {
        ring = UnsafeMutablePointer<Job>.allocate(capacity: FileFinisher.capacity)
        ring.initialize(repeating: Job(fd: -1, mtime: timespec(), mode: 0, chmod: false, entry: -1),
                        count: FileFinisher.capacity)
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        ready = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        space = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(ready, nil)
        pthread_cond_init(space, nil)
        // The thread owns a reference until it returns, so this object outlives it whatever happens.
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
            throw CASError.io("pthread_create", "layer file finishing thread", rc)
        }
        thread = tid
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

    /// Queues a file, waiting while the queue is full. Returns the first failure so far instead of
    /// queueing, in which case the caller still owns `job.fd`.
    func submit(_ job: Job) -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count == FileFinisher.capacity && failure == nil {
            pthread_cond_wait(space, mutex)
        }
        if let failure { return failure }
        ring[(head + count) % FileFinisher.capacity] = job
        count += 1
        if idle && count >= FileFinisher.batch { pthread_cond_signal(ready) }
        return nil
    }

    /// Waits until every queued file is finished; returns the first failure, if any.
    func drain() -> Failure? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while count > 0 || busy {
            if idle { pthread_cond_signal(ready) }
            pthread_cond_wait(space, mutex)
        }
        return failure
    }

    /// Finishes what is queued and stops the thread. Safe to call more than once.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(ready)
        let t = thread
        thread = nil
        pthread_mutex_unlock(mutex)
        if let t { pthread_join(t, nil) }
    }

    private func run() {
        var taken = [Job]()
        taken.reserveCapacity(FileFinisher.capacity)
        let times = UnsafeMutablePointer<timespec>.allocate(capacity: 2)
        defer { times.deallocate() }
        times[0] = timespec(tv_sec: 0, tv_nsec: LayerTreeWriter.utimeOmit)   // atime left alone
        pthread_mutex_lock(mutex)
        while true {
            while count == 0 && !stopping {
                idle = true
                pthread_cond_wait(ready, mutex)
                idle = false
            }
            if count == 0 { break }
            taken.removeAll(keepingCapacity: true)
            for i in 0..<count { taken.append(ring[(head + i) % FileFinisher.capacity]) }
            head = (head + count) % FileFinisher.capacity
            count = 0
            busy = true
            pthread_cond_broadcast(space)
            pthread_mutex_unlock(mutex)

            var first: Failure?
            for job in taken {
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

            pthread_mutex_lock(mutex)
            busy = false
            if failure == nil { failure = first }
            pthread_cond_broadcast(space)
        }
        pthread_mutex_unlock(mutex)
    }
}
