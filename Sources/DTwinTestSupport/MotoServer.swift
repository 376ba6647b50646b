import DTwinContract
import DTwinDynamoDB
import Foundation

/// moto's server (PyPI `moto[server]`): a DynamoDB-compatible endpoint on a free loopback
/// port, for the store's tests. `scripts/test.sh` installs it in `.build/tools-venv`.
public final class MotoServer: Sendable {
    public let port: Int
    public let logFile: URL
    private let process: ChildProcess

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// `environment`: extra settings, e.g. `INITIAL_NO_AUTH_ACTION_COUNT=0` makes moto check
    /// the access keys against its IAM (so unknown credentials are refused, as AWS would).
    public init(environment: [String: String] = [:]) throws {
        guard let executable = Self.executable else {
            throw TestSupportError("moto_server not found: run scripts/test.sh (it installs moto[server]), or set DTWIN_MOTO_SERVER")
        }
        var lastLog = ""
        for _ in 1...5 {
            let port = try freeLoopbackPort()
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-moto-\(UUID().uuidString).log")
            let process = try ChildProcess(
                executable: executable, arguments: ["-H", "127.0.0.1", "-p", "\(port)"],
                environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, outputFile: log.path)
            // Ready once moto itself says it runs on the port: something listening there may be
            // another test's server that took the free port first (moto then exits with
            // "Address already in use", and a test would talk to the wrong server).
            let running = "Running on http://127.0.0.1:\(port)"
            let said = { (try? String(contentsOf: log, encoding: .utf8))?.contains(running) == true }
            let deadline = Date().addingTimeInterval(30)
            while process.isRunning && !(said() && isListening(port: port)) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning && said() && isListening(port: port) {
                self.port = port
                self.logFile = log
                self.process = process
                return
            }
            process.signal(SIGKILL)
            _ = process.waitForExit(timeout: 5)
            lastLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        }
        throw TestSupportError("moto_server did not start: \(lastLog.suffix(1000))")
    }

    deinit { stop() }

    /// Kills the server at once: moto keeps everything in memory, and its server ignores
    /// SIGTERM (measured: still answering a second later), which cost 5 s a test.
    public func stop() {
        guard process.isRunning else { return }
        process.signal(SIGKILL)
        _ = process.waitForExit(timeout: 5)
    }

    static var executable: String? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["DTWIN_MOTO_SERVER"] { return path }
        let candidates =
            [ProjectFolder.file(".build/tools-venv/bin/moto_server").path]
            + (environment["PATH"] ?? "").split(separator: ":").map { "\($0)/moto_server" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

extension DynamoDBClient {
    /// Creates the twin table and its index from the project's own `cloud/dynamodb-table.json`.
    public func createTwinTable() async throws {
        let file = ProjectFolder.file("cloud/dynamodb-table.json")
        _ = try await call("CreateTable", try JSONDecoder().decode([String: JSONValue].self, from: Data(contentsOf: file)))
    }

    /// A table made the seed's way ("defaults except table name and partition key"): `messageid`
    /// and nothing else, no index.
    public func createSeedTable(named name: String) async throws {
        _ = try await call(
            "CreateTable",
            [
                "TableName": .string(name), "BillingMode": .string("PAY_PER_REQUEST"),
                "AttributeDefinitions": .array([.object(["AttributeName": .string("messageid"), "AttributeType": .string("S")])]),
                "KeySchema": .array([.object(["AttributeName": .string("messageid"), "KeyType": .string("HASH")])]),
            ])
    }
}
