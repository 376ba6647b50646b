import AsyncHTTPClient
import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinHTTP
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A real broker, the bridge running in-process on it, and a subscriber that sees everything
/// under `dtwin/#`. Each test gets its own; `stop()` shuts all of it down.
final class BridgeHarness: Sendable {
    let broker: MosquittoProcess
    let configuration: DTwinConfiguration
    let application: BridgeApplication
    let watcher: MessageCollector
    let directory: URL
    private let task: Task<Void, any Error>

    static func testConfiguration(broker: MosquittoProcess, directory: URL) -> DTwinConfiguration {
        var configuration = DTwinConfiguration()
        configuration.broker = BrokerURL(host: "127.0.0.1", port: broker.port)
        configuration.clientId = "bridge-\(UUID().uuidString.prefix(8))"
        configuration.store.path = directory.appendingPathComponent("twin.sqlite").path
        configuration.spool.path = directory.appendingPathComponent("spool").path
        configuration.upstream.retry = .init(initial: .milliseconds(20), max: .milliseconds(200), maxAge: .seconds(3600))
        configuration.upstream.timeout = .seconds(2)
        configuration.shutdownTimeout = .seconds(5)
        configuration.http.port = 0
        return configuration
    }

    static var logger: Logger {
        var logger = Logger(label: "bridge-under-test")
        logger.logLevel = ProcessInfo.processInfo.environment["DTWIN_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }

    /// Starts a broker (unless given one), then the bridge, and waits until it is `online`.
    init(
        broker existing: MosquittoProcess? = nil, waitForOnline: Bool = true, environment: [String: String] = [:],
        configure: (inout DTwinConfiguration) -> Void = { _ in }
    ) async throws {
        broker = try existing ?? MosquittoProcess()
        directory = try makeTemporaryFolder("dtwin-test")
        var configuration = Self.testConfiguration(broker: broker, directory: directory)
        configure(&configuration)
        self.configuration = configuration
        application = try BridgeApplication(
            configuration: configuration, environment: environment, logger: Self.logger, handleSignals: false)
        let application = self.application
        task = Task { try await application.run() }
        if waitForOnline {
            watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/#"])
            // 60 s, not the collector's 10: under the whole suite's parallel load an in-process
            // bridge has been seen to start 20-30 s late (two cooperative threads, shared by
            // every test), and a slow start is not what these tests are about.
            guard
                await watcher.waitFor(
                    timeout: .seconds(60), { $0.contains { $0.topic == "dtwin/bridge/status" && $0.payload == Array("online".utf8) } })
            else { throw TestSupportError("the bridge did not come online within 60 s") }
        } else {
            watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/#"])
        }
    }

    /// Publishes as a device would (QoS 1, acknowledged by the broker).
    func publish(_ topic: String, _ payload: [UInt8]) async throws {
        try await watcher.client.publish(topic: topic, payload: payload, qos: .atLeastOnce)
    }

    func publish(_ topic: String, _ text: String) async throws {
        try await publish(topic, Array(text.utf8))
    }

    func payloads(on topic: String) -> [String] {
        watcher.messages(on: topic).map { String(decoding: $0.payload, as: UTF8.self) }
    }

    /// GETs `path` from the bridge's HTTP server (no credentials).
    func get(_ path: String) async throws -> (status: Int, body: String) {
        guard let port = await application.httpAddress.port() else { throw TestSupportError("the HTTP server did not start") }
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    var deadLetters: [DeadLetter] {
        watcher.messages(on: "dtwin/bridge/deadletter").compactMap {
            try? JSONDecoder().decode(DeadLetter.self, from: Data($0.payload))
        }
    }

    /// Stops the bridge (gracefully, so it drains), the watcher and the broker; removes the
    /// test's files unless `keepFiles`.
    func stop(keepFiles: Bool = false) async {
        await application.shutdown()
        _ = try? await task.value
        await watcher.close()
        broker.stop()
        if !keepFiles { removeFiles() }
    }

    func removeFiles() {
        try? FileManager.default.removeItem(at: directory)
    }
}

/// The `dtwin` executable built beside the tests (or `$DTWIN_BINARY`).
enum DTwinBinary {
    static var path: String {
        if let path = ProcessInfo.processInfo.environment["DTWIN_BINARY"] { return path }
        return ProjectFolder.file(".build/debug/dtwin").path
    }

    /// Runs `dtwin ARGS` to completion (bounded); returns its exit code and combined output.
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(30)) async throws
        -> (code: Int32?, output: String)
    {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let child = try ChildProcess(
            executable: path, arguments: arguments, environment: cleanEnvironment.merging(environment) { $1 },
            outputFile: output.path)
        guard await child.exited(within: timeout) else {
            child.signal(SIGKILL)
            throw TestSupportError("dtwin \(arguments) did not finish within \(timeout)")
        }
        return (child.exitCode, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }

    /// The test's environment without any dtwin or Twilio settings of the person running the tests.
    static var cleanEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("DTWIN_") && !$0.key.hasPrefix("TWILIO_") && !$0.key.hasPrefix("acct_")
        }
    }
}
