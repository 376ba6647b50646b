import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import Foundation
import Logging
import Synchronization
import UnixSignals

/// A command-line tool's broker connection: connects at once or fails with one line (exit 1):
/// broker down, TLS failure, credentials refused.
enum ToolConnection {
    static func connect(
        _ configuration: MQTTClientConfiguration, timeout: Duration = .seconds(5)
    ) async throws -> MQTTClient {
        var logger = Logger(label: "dtwin")
        logger.logLevel = .critical
        let client: MQTTClient
        do {
            client = try MQTTClient(configuration: configuration, logger: logger)
        } catch {
            throw CommandFailure.runtime("\(error)")
        }
        client.start()
        do {
            try await client.waitUntilConnected(timeout: timeout, failFast: true)
        } catch {
            await client.close()
            throw CommandFailure.runtime("\(error)")
        }
        return client
    }
}

/// Resolves when the user presses Ctrl-C (or the process gets SIGTERM).
func interrupted() async {
    for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return }
}

/// Writes a line to standard output at once (no buffering: `| jq` sees each line as it comes).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Whether standard output is a terminal that wants colours (`NO_COLOR`, `TERM=dumb` say no).
var stdoutWantsColor: Bool {
    let environment = ProcessInfo.processInfo.environment
    return isatty(STDOUT_FILENO) == 1 && environment["NO_COLOR"] == nil && environment["TERM"] != "dumb"
}

/// A number shared between tasks (`Atomic` itself cannot be captured: it is not copyable).
final class SharedNumber: Sendable {
    private let value: Atomic<Int64>

    init(_ initial: Int64 = 0) { value = Atomic(initial) }

    func add(_ delta: Int64) { value.add(delta, ordering: .relaxed) }
    func set(_ new: Int64) { value.store(new, ordering: .relaxed) }
    var current: Int64 { value.load(ordering: .relaxed) }
}

extension Duration {
    /// `2.4 s`, for summary lines.
    var secondsText: String {
        String(format: "%.1f s", seconds)
    }
}
