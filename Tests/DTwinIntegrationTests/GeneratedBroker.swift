import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging

/// A broker directory made by `broker-config/setup.sh` and a real mosquitto running from it,
/// on free loopback ports: the production setup, as a user deploys it.
struct GeneratedBroker: Sendable {
    let directory: URL
    let mqttPort: Int
    let mqttsPort: Int
    let broker: MosquittoProcess

    var ca: String { directory.appendingPathComponent("tls/ca.crt").path }

    /// Runs setup.sh into a new folder and starts the broker (again on other ports if another
    /// test's server took one of the free ports first).
    init(host: String = "gateway.test") async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-broker-\(UUID().uuidString)")
        var attempt = 0
        while true {
            attempt += 1
            let pair = try freeLoopbackPorts(2)
            let ports = (pair[0], pair[1])
            let setup = try await Self.script("setup.sh", ["--host", host, directory.path], environment: Self.ports(ports))
            guard setup.code == 0 else { throw TestSupportError("setup.sh failed: \(setup.errors)") }
            do {
                let broker = try MosquittoProcess(
                    configurationFile: directory.appendingPathComponent("mosquitto.conf"), port: ports.0,
                    logFile: directory.appendingPathComponent("var/mosquitto.log"))
                guard await waitUntil(timeout: .seconds(5), { isListening(port: ports.1) }) else {
                    broker.kill()
                    throw TestSupportError("the TLS listener did not open on \(ports.1)")
                }
                (mqttPort, mqttsPort, self.broker) = (ports.0, ports.1, broker)
                return
            } catch  where attempt < 3 {
                continue
            }
        }
    }

    static func ports(_ ports: (Int, Int)) -> [String: String] {
        ["MQTT_PORT": "\(ports.0)", "MQTTS_PORT": "\(ports.1)"]
    }

    func stop() {
        broker.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The dtwin binary's bridge on this broker with bridge.env's credentials, its store, spool
    /// and log in `bridge-work/`; `extra` adds to (or replaces) its environment.
    struct RunningBridge {
        let process: ChildProcess
        let log: URL
        let environment: [String: String]

        var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
    }

    func startBridge(_ extra: [String: String] = [:]) throws -> RunningBridge {
        let work = directory.appendingPathComponent("bridge-work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let environment = [
            "DTWIN_BROKER": try bridgeURL, "DTWIN_STORE_PATH": work.appendingPathComponent("twin.sqlite").path,
            "DTWIN_SPOOL_PATH": work.appendingPathComponent("spool").path, "DTWIN_HTTP_PORT": "0", "DTWIN_SHUTDOWNTIMEOUT": "5s",
        ].merging(extra) { $1 }
        let log = work.appendingPathComponent(extra["DTWIN_INSTANCE"].map { "bridge-\($0).log" } ?? "bridge.log")
        let process = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"],
            environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: log.path)
        return RunningBridge(process: process, log: log, environment: environment)
    }

    /// `DTWIN_BROKER` as setup.sh wrote it into `directory`/bridge.env (or `file`: operator.env).
    static func bridgeURL(in directory: URL, file: String = "bridge.env") throws -> String {
        let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("DTWIN_BROKER=") }) else {
            throw TestSupportError("\(file) has no DTWIN_BROKER line")
        }
        return String(line.dropFirst("DTWIN_BROKER=".count))
    }

    var bridgeURL: String { get throws { try Self.bridgeURL(in: directory) } }

    var bridgePassword: String {
        get throws {
            guard let password = try BrokerURL(parsing: bridgeURL).password else {
                throw TestSupportError("no password in the bridge's URL")
            }
            return password
        }
    }

    /// Adds a device with add-device.sh; returns the password it printed.
    func addDevice(_ name: String, rotate: Bool = false) async throws -> String {
        let run = try await Self.script("add-device.sh", (rotate ? ["--rotate"] : []) + [directory.path, name])
        guard run.code == 0 else { throw TestSupportError("add-device.sh \(name) failed: \(run.errors)") }
        return run.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A device's connection: TLS on the devices' port, the server checked against the CA.
    func device(_ name: String, password: String, clientID: String? = nil, ca: String? = nil) -> MQTTClientConfiguration {
        var configuration = MQTTClientConfiguration(
            port: mqttsPort, clientID: clientID ?? name, cleanSession: true, username: name, password: password,
            tls: .init(caFile: ca ?? self.ca))
        configuration.reconnectDelay = (.milliseconds(50), .milliseconds(500))
        return configuration
    }

    /// The bridge's connection: plain MQTT on the loopback port with bridge.env's credentials.
    func bridge(clientID: String = "bridge-\(UUID().uuidString.prefix(6))", cleanSession: Bool = true) throws
        -> MQTTClientConfiguration
    {
        var configuration = MQTTClientConfiguration(
            port: mqttPort, clientID: clientID, cleanSession: cleanSession, username: "dtwin-bridge",
            password: try bridgePassword)
        configuration.reconnectDelay = (.milliseconds(50), .milliseconds(500))
        return configuration
    }

    /// The operator's connection (operator.env): plain MQTT on the loopback port.
    func operatorConnection() throws -> MQTTClientConfiguration {
        let url = try BrokerURL(parsing: Self.bridgeURL(in: directory, file: "operator.env"))
        var configuration = MQTTClientConfiguration(
            port: mqttPort, clientID: "operator-\(UUID().uuidString.prefix(6))", cleanSession: true, username: url.username,
            password: url.password)
        configuration.reconnectDelay = (.milliseconds(50), .milliseconds(500))
        return configuration
    }

    /// How the broker answers a connection: `nil` when it is accepted, else the error.
    static func connectionError(_ configuration: MQTTClientConfiguration) async throws -> MQTTError? {
        var logger = Logger(label: "broker-config-test")
        logger.logLevel = .critical
        return try await DTwinTestSupport.connectionError(of: MQTTClient(configuration: configuration, logger: logger))
    }

    struct ScriptRun {
        let code: Int32?
        let output: String
        let errors: String
    }

    /// Runs `broker-config/NAME ARGS` (bounded); standard output and error apart.
    static func script(_ name: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ScriptRun {
        try await run("/bin/bash", [ProjectFolder.file("broker-config/\(name)").path] + arguments, environment: environment)
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> ScriptRun {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-script-\(UUID().uuidString)")
        let (out, err) = (base.path + ".out", base.path + ".err")
        defer { for file in [out, err] { try? FileManager.default.removeItem(atPath: file) } }
        let child = try ChildProcess(
            executable: "/bin/bash", arguments: ["-c", "exec \"$0\" \"$@\" 2>\"$SCRIPT_STDERR\"", executable] + arguments,
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }.merging(["SCRIPT_STDERR": err]) { $1 },
            outputFile: out)
        guard await child.exited(within: .seconds(60)) else {
            child.signal(SIGKILL)
            throw TestSupportError("\(executable) \(arguments) did not finish within 60 s")
        }
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return ScriptRun(code: child.exitCode, output: read(out), errors: read(err))
    }
}
