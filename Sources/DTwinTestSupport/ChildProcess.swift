import Foundation

/// A child process started with `posix_spawn` and reaped with `waitpid`.
///
/// Foundation's `Process` on Linux was seen here to report a child that had exited as still
/// running (`waitUntilExit()` hung, `isRunning` stayed true) when used from test tasks; this
/// small wrapper has no monitor thread to get wrong.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `status` is written only under `lock`.
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable` with `arguments`; stdout and stderr go to `outputFile` (appended) or
    /// /dev/null. `environment` replaces the child's environment when given; the child starts in
    /// `workingDirectory` when given (else in this process's).
    public init(
        executable: String, arguments: [String], environment: [String: String]? = nil, outputFile: String? = nil,
        workingDirectory: String? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        let output = outputFile ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // env(1) changes folder and then execs the program itself, keeping this pid, so signals
        // reach the program (glibc's posix_spawn_file_actions_addchdir_np is not visible to Swift).
        let (executable, arguments) =
            workingDirectory.map { ("/usr/bin/env", ["--chdir=\($0)", executable] + arguments) } ?? (executable, arguments)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let environmentList = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let envp = environmentList.map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        // A child inherits the spawning thread's blocked signals, and test threads (libdispatch,
        // signal handlers) block some: without this, SIGTERM never reaches mosquitto or the bridge.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw TestSupportError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    deinit {
        if isRunning {
            Foundation.kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// The raw wait status once the child has exited.
    public var exitStatus: Int32? {
        lock.lock()
        defer { lock.unlock() }
        if status == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
        }
        return status
    }

    public var isRunning: Bool { exitStatus == nil }

    /// The exit code, or `nil` while running or when it died from a signal.
    public var exitCode: Int32? {
        guard let raw = exitStatus, raw & 0x7F == 0 else { return nil }
        return (raw >> 8) & 0xFF
    }

    /// The signal that ended it, if one did.
    public var terminatingSignal: Int32? {
        guard let raw = exitStatus, raw & 0x7F != 0 else { return nil }
        return raw & 0x7F
    }

    public func signal(_ signal: Int32) {
        if isRunning { Foundation.kill(pid, signal) }
    }

    /// Waits until the child has exited, at most `timeout` seconds; returns whether it has.
    public func waitForExit(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        return !isRunning
    }

    /// Async form of ``waitForExit(timeout:)`` that does not hold a cooperative thread.
    public func exited(within timeout: Duration) async -> Bool {
        await waitUntil(timeout: timeout, interval: .milliseconds(10)) { !isRunning }
    }
}
