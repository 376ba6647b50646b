import Foundation

/// A real `mosquitto` broker for tests and benchmarks: its own temporary folder, a free
/// loopback port, persistence on (so restarts keep sessions), stopped explicitly.
public final class MosquittoProcess: @unchecked Sendable {
    // @unchecked: `process` is replaced only by start()/stop()/kill(), which tests call from one task;
    // `port` changes only inside init.
    public private(set) var port: Int
    public let directory: URL
    public let logFile: URL
    private let configurationFile: URL
    /// Whether `directory` is this object's own, removed when it goes.
    private let ownsDirectory: Bool
    private var process: ChildProcess?
    /// While the broker is stopped, its port is held (``PortReservation``), so a parallel test's
    /// server cannot take it before ``start()`` brings the broker back on it.
    private var held: PortReservation?

    public var url: String { "mqtt://127.0.0.1:\(port)" }
    /// The broker's process id while it runs (0 when stopped).
    public var pid: pid_t { process?.pid ?? 0 }

    /// Starts a broker. `listenerOptions` follow its `listener` line (TLS files, …);
    /// `anonymous: false` requires credentials (give a `password_file` in `extraConfiguration`).
    public init(listenerOptions: [String] = [], anonymous: Bool = true, extraConfiguration: [String] = []) throws {
        directory = try makeTemporaryFolder("dtwin-mosquitto")
        logFile = directory.appendingPathComponent("mosquitto.log")
        configurationFile = directory.appendingPathComponent("mosquitto.conf")
        ownsDirectory = true
        port = 0
        // The free port can be taken by another test's server before mosquitto binds it: then
        // the broker starts again on another one.
        for attempt in 1...5 {
            port = try freeLoopbackPort()
            try writeConfiguration(listenerOptions: listenerOptions, anonymous: anonymous, extraConfiguration: extraConfiguration)
            do {
                try start()
                return
            } catch  where attempt < 5 && (log.contains("Address already in use") || process?.isRunning == false) {
                try? FileManager.default.removeItem(at: logFile)
            }
        }
    }

    /// Starts a broker from a configuration written elsewhere (broker-config/setup.sh), waiting
    /// for `port`, one of its listeners. Its folder is the caller's and stays.
    public init(configurationFile: URL, port: Int, logFile: URL) throws {
        self.configurationFile = configurationFile
        self.port = port
        self.logFile = logFile
        directory = configurationFile.deletingLastPathComponent()
        ownsDirectory = false
        try start()
    }

    private func writeConfiguration(listenerOptions: [String], anonymous: Bool, extraConfiguration: [String]) throws {
        let configuration =
            ["listener \(port) 127.0.0.1"] + listenerOptions + [
                "allow_anonymous \(anonymous)",
                "persistence true",
                "persistence_location \(directory.path)/",
                "autosave_interval 1",
                // Root keeps root, so the temporary folder stays writable (mosquitto otherwise drops
                // to the `mosquitto` user); as any other user this line is ignored.
                "user root",
                // Tests and benchmarks queue far more than the default 1000 messages for an absent client.
                "max_queued_messages 1000000",
                "log_dest file \(logFile.path)",
                "log_type error",
                "log_type warning",
                "log_type notice",
            ] + extraConfiguration
        try configuration.joined(separator: "\n").appending("\n")
            .write(to: configurationFile, atomically: true, encoding: .utf8)
    }

    deinit {
        process?.signal(SIGKILL)
        _ = process?.waitForExit(timeout: 5)
        if ownsDirectory { try? FileManager.default.removeItem(at: directory) }
    }

    /// The broker's log so far (errors, warnings, notices such as client connections).
    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// (Re)starts the broker on the same port and waits until it accepts connections.
    public func start() throws {
        held?.release()
        held = nil
        let process = try ChildProcess(
            executable: Self.executable, arguments: ["-c", configurationFile.path])
        self.process = process
        let deadline = Date().addingTimeInterval(10)
        while !isListening(port: port) {
            guard process.isRunning, Date() < deadline else {
                let log = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
                throw TestSupportError("mosquitto did not start on port \(port): \(log.suffix(500))")
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        // Someone else may be listening there: another test's server that took the free port
        // first. Then this broker exits at once (address in use) and must not be used.
        Thread.sleep(forTimeInterval: 0.05)
        guard process.isRunning else {
            throw TestSupportError("mosquitto exited right after starting on port \(port): \(log.suffix(500))")
        }
    }

    /// Stops the broker (SIGTERM, so it saves its persistence file) and waits for it to exit.
    public func stop() {
        guard let process, process.isRunning else { return }
        process.signal(SIGTERM)
        if !process.waitForExit(timeout: 10) {
            // Worth knowing: a test that "passed" slowly waited here.
            FileHandle.standardError.write(Data("mosquitto on port \(port) ignored SIGTERM for 10 s; killing it\n".utf8))
            process.signal(SIGKILL)
            _ = process.waitForExit(timeout: 5)
        }
        self.process = nil
        held = try? PortReservation(port: port)
    }

    /// Kills the broker without letting it save anything.
    public func kill() {
        guard let process, process.isRunning else { return }
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 5)
        self.process = nil
        held = try? PortReservation(port: port)
    }

    static var executable: String {
        for candidate in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "/usr/sbin/mosquitto"
    }
}
