// Runs the built `udocker` binary for integration tests (posix_spawn, pipes for stdin, stdout and
// stderr) and finds it next to the test bundle. Reusable by every integration test.
#if canImport(Glibc)
import Glibc
#endif
import CAS
import CShim

/// The udocker executable under test: $UDOCKER_TEST_BINARY, else `udocker` in the products
/// directory holding this test bundle (e.g. .build/debug), else .build/debug/udocker of the package.
public func udockerBinaryPath() -> String {
    if let p = getenv("UDOCKER_TEST_BINARY").map({ String(cString: $0) }), !p.isEmpty { return p }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    if n > 0 {
        let exe = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var dir = FileIO.parent(of: exe)
        // On macOS-style bundles the executable sits in X.xctest/Contents/MacOS.
        for _ in 0..<4 {
            if FileIO.exists(dir + "/udocker") && !FileIO.isDirectory(dir + "/udocker") { return dir + "/udocker" }
            dir = FileIO.parent(of: dir)
        }
    }
    // Tests/TestSupport/RunUdocker.swift -> package root.
    var root = #filePath
    for _ in 0..<3 { root = FileIO.parent(of: root) }
    return root + "/.build/debug/udocker"
}

/// Makes a unique directory under /tmp; the caller removes it (FileIO.removeTree).
public func makeTempDirectory(_ label: String) -> String {
    var template = Array("/tmp/udocker-\(label)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buf in buf.baseAddress.flatMap { mkdtemp($0) } }
    precondition(made != nil, "mkdtemp failed: errno \(errno)")
    return String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs `udocker args…` and returns its exit status (128+signal if killed), stdout and stderr.
///
/// The environment is only PATH, a fresh temporary HOME (removed afterwards) and
/// UDOCKER_NOSYSCONF=1 (so a host /etc/udocker.conf does not change results), overridden and
/// extended by `env`. When the tests run as root, `--allow-root` is put first unless
/// `allowRootWhenRoot` is false (to test the refusal itself).
/// With `killAfter`, the command is killed (status 137) once that many seconds pass, so a test of
/// something that could hang ends anyway.
public func runUdocker(_ args: [String], env: [String: String] = [:], stdin: [UInt8]? = nil,
                allowRootWhenRoot: Bool = true, killAfter: Int? = nil) -> (status: Int32, stdout: String, stderr: String) {
    var extended = env
    var tempHome: String? = nil
    if env["HOME"] == nil {
        tempHome = makeTempDirectory("home")
        extended["HOME"] = tempHome
    }
    defer { if let h = tempHome { try? FileIO.removeTree(h) } }
    let timer = killAfter.map { ["/usr/bin/timeout", "-s", "KILL", String($0)] } ?? []
    return spawnAndCollect(timer + udockerArgv(args, allowRoot: allowRootWhenRoot),
                           environment: udockerEnvironment(extended), stdin: stdin)
}

/// PATH and UDOCKER_NOSYSCONF=1, overridden and extended by `env`.
private func udockerEnvironment(_ env: [String: String]) -> [String: String] {
    var environment: [String: String] = [
        "PATH": getenv("PATH").map { String(cString: $0) } ?? "/usr/local/bin:/usr/bin:/bin",
        "UDOCKER_NOSYSCONF": "1",
    ]
    for (k, v) in env { environment[k] = v }
    return environment
}

/// The binary, `--allow-root` first when the tests run as root (unless refused), then `args`.
private func udockerArgv(_ args: [String], allowRoot: Bool) -> [String] {
    [udockerBinaryPath()] + (geteuid() == 0 && allowRoot ? ["--allow-root"] : []) + args
}

/// posix_spawn `argv` with pipes on fds 0, 1, 2; feeds `stdin`, collects output until both pipes
/// close, and waits for the process.
public func spawnAndCollect(_ argv: [String], environment: [String: String],
                     stdin: [UInt8]?) -> (status: Int32, stdout: String, stderr: String) {
    var inPipe: [Int32] = [-1, -1], outPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
    // O_CLOEXEC: tests run in parallel, and another child must not inherit our pipe ends
    // (it would hold them open and we would never see end-of-file).
    guard ud_pipe_cloexec(&inPipe) == 0, ud_pipe_cloexec(&outPipe) == 0, ud_pipe_cloexec(&errPipe) == 0 else {
        return (-1, "", "pipe2 failed: errno \(errno)")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

    let (pid, rc) = spawn(argv, environment: environment, actions: &actions)
    close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
    if rc != 0 {
        close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
        return (-1, "", "posix_spawn \(argv[0]) failed: \(String(cString: strerror(rc)))")
    }

    var input = stdin ?? []
    var inFD: Int32 = inPipe[1]
    if input.isEmpty { close(inFD); inFD = -1 } else { _ = fcntl(inFD, F_SETFL, O_NONBLOCK) }
    var out: [UInt8] = [], err: [UInt8] = []
    var outFD = outPipe[0], errFD = errPipe[0]
    var chunk = [UInt8](repeating: 0, count: 65536)
    while outFD >= 0 || errFD >= 0 || inFD >= 0 {
        var fds: [pollfd] = []
        if inFD >= 0 { fds.append(pollfd(fd: inFD, events: Int16(POLLOUT), revents: 0)) }
        if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
        if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
        if poll(&fds, nfds_t(fds.count), -1) < 0 {
            if errno == EINTR { continue }
            break
        }
        for p in fds where p.revents != 0 {
            if p.fd == inFD {
                let n = input.withUnsafeBytes { write(inFD, $0.baseAddress, $0.count) }
                if n > 0 { input.removeFirst(n) }
                if input.isEmpty || (n < 0 && errno != EAGAIN && errno != EINTR) { close(inFD); inFD = -1 }
                continue
            }
            let n = chunk.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
            if n > 0 {
                if p.fd == outFD { out += chunk[0..<n] } else { err += chunk[0..<n] }
            } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                close(p.fd)
                if p.fd == outFD { outFD = -1 } else { errFD = -1 }
            }
        }
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

/// posix_spawn with C copies of argv and the environment; returns the pid and posix_spawn's result.
private func spawn(_ argv: [String], environment: [String: String],
                   actions: inout posix_spawn_file_actions_t) -> (pid: pid_t, rc: Int32) {
    let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        cArgs.forEach { free($0) }
        cEnv.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, cEnv)
    return (pid, rc)
}

/// Starts `udocker args…` in the background with output discarded and returns its pid (for tests
/// that kill it); the environment is built as in `runUdocker`, except that HOME must be given.
public func startUdocker(_ args: [String], env: [String: String]) -> pid_t {
    let argv = udockerArgv(args, allowRoot: true)
    let environment = udockerEnvironment(env)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd: Int32 in [0, 1, 2] {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    let (pid, rc) = spawn(argv, environment: environment, actions: &actions)
    precondition(rc == 0, "posix_spawn \(argv[0]) failed: \(rc)")
    return pid
}

/// Waits for a child; returns its exit status, or 128+signal when a signal ended it.
public func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}
