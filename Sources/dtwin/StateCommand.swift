import ArgumentParser
import AsyncHTTPClient
import DTwinConfig
import DTwinContract
import Foundation
import NIOCore
import NIOHTTP1

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Show a device's twin, or set its desired state, through the running bridge.",
        discussion: """
            Examples:
              dtwin state uno1                                 the twin: desired, reported, pending
              dtwin state uno1 --set led=on --set period=300   sent now if uno1 is online, else when it is back
              dtwin state uno1 --set led=off --if-version 7    only if nobody changed it since version 7

            Talks to the bridge's API (http.host:http.port, or --url) with the bearer token in \
            DTWIN_API_TOKEN. Values: on/off and true/false are booleans, whole numbers are numbers, \
            null removes a key. Exits 0 when done, 1 when the bridge cannot be reached or the twin \
            has changed since --if-version, 2 for bad arguments or a value the device does not take.
            """
    )

    @OptionGroup var settings: ConfigurationOption

    @Argument(help: "The device name.")
    var device: String

    @Option(name: .customLong("set"), help: ArgumentHelp("A desired key and value (repeatable).", valueName: "KEY=VALUE"))
    var assignments: [String] = []

    @Option(help: ArgumentHelp("Apply only if the twin's version is still this.", valueName: "N"))
    var ifVersion: Int?

    @Option(help: ArgumentHelp("The bridge's address (default: http://http.host:http.port).", valueName: "URL"))
    var url: String?

    @Flag(help: "Print the twin as the API's JSON.")
    var json = false

    func run() async throws {
        try await reportingFailures {
            let name = try validDeviceName(device)
            var desired: [String: JSONValue] = [:]
            for assignment in assignments {
                guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                    throw CommandFailure.usage("--set \(assignment.debugDescription) must be KEY=VALUE, like led=on")
                }
                desired[String(assignment[..<equals]).lowercased()] = Self.value(String(assignment[assignment.index(after: equals)...]))
            }
            if ifVersion != nil && desired.isEmpty { throw CommandFailure.usage("--if-version goes with --set") }
            let configuration = try settings.loadConfiguration()
            let host = ["0.0.0.0", "::"].contains(configuration.http.host) ? "127.0.0.1" : configuration.http.host
            let base = (url ?? "http://\(host):\(configuration.http.port)").trimmingTrailingSlashes()
            var request = HTTPClientRequest(url: "\(base)/api/devices/\(name)/state")
            request.headers.add(name: "Authorization", value: "Bearer \(ProcessInfo.processInfo.environment["DTWIN_API_TOKEN"] ?? "")")
            if !desired.isEmpty {
                request.method = .PATCH
                request.headers.add(name: "Content-Type", value: "application/json")
                if let ifVersion { request.headers.add(name: "If-Match", value: "\(ifVersion)") }
                request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["desired": JSONValue.object(desired)])))
            }
            let (status, body) = try await Self.execute(request, base: base)
            guard status == 200 else {
                let reason = (JSONValue.parse(Array(body.utf8))?["error"]?.stringValue) ?? body
                throw status == 400 || status == 413
                    ? CommandFailure.usage(reason) : CommandFailure.runtime("the bridge answered \(status): \(reason)")
            }
            guard !json, let document = try? JSONDecoder().decode(TwinDocument.self, from: Data(body.utf8)) else {
                print(body)
                return
            }
            print(Self.describe(document))
        }
    }

    /// ``TwinDocument/typed(_:)``, and `null`, which removes the key.
    static func value(_ text: String) -> JSONValue {
        text.lowercased() == "null" ? .null : TwinDocument.typed(text)
    }

    static func execute(_ request: HTTPClientRequest, base: String) async throws -> (Int, String) {
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body))
        } catch {
            throw CommandFailure.runtime("cannot reach the bridge at \(base) (http.host, http.port, or --url): \(error)")
        }
    }

    /// The twin in a few lines a person reads at a glance.
    static func describe(_ document: TwinDocument) -> String {
        func list(_ values: [String: JSONValue]) -> String {
            values.isEmpty ? "(none)" : values.sorted { $0.key < $1.key }.map { "\($0.key)=\(TwinDocument.shown($0.value))" }.joined(separator: ", ")
        }
        let pending =
            document.pending.isEmpty
            ? "(none)"
            : document.pending.sorted { $0.key < $1.key }.map { key, entry in
                "\(key)=\(TwinDocument.shown(entry.value)) (\(entry.command)\(entry.failed ? ", failed" : ""))"
            }.joined(separator: ", ")
        return """
            \(document.device) (version \(document.version))
            desired:  \(list(document.desired))
            reported: \(list(document.reported))
            delta:    \(list(document.delta))
            pending:  \(pending)
            """
    }
}
