import DTwinBridge
import DTwinContract
import DTwinHTTP
import DTwinTestSupport
import DTwinTwilio
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Prometheus
import Synchronization
import Testing

/// Every route of the bridge's HTTP server, driven through Hummingbird's router client (no
/// socket), with stand-ins for the bridge behind the HTTP layer's protocols.
@Suite struct RouterTests {
    static let token = "router-test-token"
    static let authToken = "router-test-twilio-token"
    static let publicURL = "https://gateway.example"

    // MARK: stand-ins

    final class Bridge: CommandSending, DeviceDirectory, CellularIntake, BridgeHealth, TestEventDelivery {
        struct Sent: Equatable {
            var command: String
            var device: String
        }

        let sent = Mutex<[Sent]>([])
        let ingested = Mutex<[(device: String, payload: [UInt8])]>([])
        let gaugesRecorded = Atomic<Int>(0)
        let refusal: IntakeRefusal?
        let problems: [String]

        init(refusal: IntakeRefusal? = nil, problems: [String] = []) {
            self.refusal = refusal
            self.problems = problems
        }

        func send(_ command: String, to device: DeviceName, from origin: CommandDispatcher.Origin) async throws(CommandError)
            -> CommandDispatcher.Route
        {
            sent.withLock { $0.append(Sent(command: command, device: device.rawValue)) }
            return .mqtt
        }
        func isCellular(_ device: DeviceName) -> Bool { device.rawValue == "cell1" }
        func topic(for device: DeviceName) -> String { "dtwin/\(device)/down" }
        var devices: [DeviceName] { [DeviceName("uno1")!] }
        func entry(_ device: DeviceName) -> DeviceRegistry.Entry? { nil }
        func ingestFromIPCommand(_ payload: [UInt8], device: DeviceName) async throws(IntakeRefusal) -> MessageID {
            if let refusal { throw refusal }
            ingested.withLock { $0.append((device.rawValue, payload)) }
            return MessageID(rawValue: "id-1")
        }
        var unreadiness: [String] { problems }
        func recordGauges() { gaugesRecorded.add(1, ordering: .relaxed) }
        var liveHealth: LiveHealth {
            LiveHealth(
                brokerConnected: problems.isEmpty, spoolMessages: 0, waitingForBroker: 0, received: 0, delivered: 0, deadLettered: 0,
                problems: problems)
        }
        var upstreamName: String { "stand-in" }
        func deliverTestEvent(_ event: ConsoleTestEvent) async -> DeliveryOutcome { .delivered(reply: nil, note: nil) }
    }

    static func router(_ bridge: Bridge, apiToken: String? = token) -> Router<BasicRequestContext> {
        let logger = Logger(label: "router-test")
        let outbox = SMSOutbox(client: nil, settings: .init(from: "", statusCallback: nil, smsPerHour: 10), logger: logger)
        let webhooks = TwilioWebhooks(
            validator: TwilioRequestValidator(authToken: authToken), publicURL: publicURL, book: SMSAddressBook(phonesByDevice: [:]),
            outbox: outbox, commands: bridge, directory: bridge, cellular: bridge, store: nil, logger: logger)
        let api = DeviceAPI(
            access: APIAccess(token: apiToken), commands: bridge, directory: bridge, testEvents: bridge, store: nil,
            storeAbsence: "no twin table in this test", configured: [], outbox: outbox, logger: logger)
        let dashboard = Dashboard(access: APIAccess(token: apiToken), live: LiveEvents(), health: bridge, publicURL: "", logger: logger)
        return HTTPServer.router(
            webhooks: webhooks, api: api, dashboard: dashboard, readiness: Readiness(health: bridge, store: nil), health: bridge,
            metrics: PrometheusCollectorRegistry())
    }

    /// Runs `body` with a client of a fresh router around `bridge`.
    static func withClient(
        _ bridge: Bridge, apiToken: String? = token, _ body: @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        try await Application(router: router(bridge, apiToken: apiToken)).test(.router) { client in try await body(client) }
    }

    static func api(_ text: String? = nil, json: Bool = false) -> HTTPFields {
        var headers: HTTPFields = [.authorization: "Bearer \(token)"]
        if json { headers[.contentType] = "application/json" }
        return headers
    }

    static func error(_ response: TestResponse) -> String? {
        JSONValue.parse(Array(response.body.readableBytesView))?["error"]?.stringValue
    }

    // MARK: plain routes

    @Test func healthReadinessAndMetrics() async throws {
        let unready = Bridge(problems: ["not connected to the broker"])
        try await Self.withClient(unready) { client in
            let health = try await client.execute(uri: "/healthz", method: .get)
            #expect(health.status == .ok && String(buffer: health.body) == "ok\n")
            let ready = try await client.execute(uri: "/readyz", method: .get)
            #expect(ready.status == .serviceUnavailable)
            #expect(String(buffer: ready.body).contains("not connected to the broker"))
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .ok && metrics.headers[.contentType]?.hasPrefix("text/plain") == true)
        }
        #expect(unready.gaugesRecorded.load(ordering: .relaxed) == 1)
    }

    // MARK: /api

    @Test func theAPINeedsTheBearerToken() async throws {
        try await Self.withClient(Bridge()) { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "Basic \(Self.token)"]] {
                let refused = try await client.execute(uri: "/api/devices", method: .get, headers: headers)
                #expect(refused.status == .unauthorized)
                #expect(refused.headers[.wwwAuthenticate] == #"Bearer realm="dtwin""#)
                #expect(Self.error(refused) == "missing or wrong bearer token")
            }
            // Unknown paths too: the token is checked before anything says what exists.
            #expect(try await client.execute(uri: "/api/nothing", method: .get).status == .unauthorized)
            let listed = try await client.execute(uri: "/api/devices", method: .get, headers: Self.api())
            #expect(listed.status == .ok && String(buffer: listed.body).contains("uno1"))
        }
        try await Self.withClient(Bridge(), apiToken: nil) { client in
            let closed = try await client.execute(uri: "/api/devices", method: .get, headers: Self.api())
            #expect(closed.status == .forbidden && Self.error(closed)?.contains("DTWIN_API_TOKEN") == true)
        }
    }

    @Test func wrongMethodsAndUnknownPathsAreJSON() async throws {
        try await Self.withClient(Bridge()) { client in
            let wrongMethod = try await client.execute(uri: "/api/devices/uno1/readings", method: .post, headers: Self.api())
            #expect(wrongMethod.status == .methodNotAllowed && wrongMethod.headers[.allow] == "GET")
            #expect(Self.error(wrongMethod) == "/api/devices/<device>/readings takes GET only")
            let delete = try await client.execute(uri: "/api/devices/uno1/commands", method: .delete, headers: Self.api())
            #expect(delete.status == .methodNotAllowed && delete.headers[.allow] == "POST")
            for path in ["/api", "/api/nothing", "/api/devices/uno1/everything"] {
                let unknown = try await client.execute(uri: path, method: .get, headers: Self.api())
                #expect(unknown.status == .notFound, "\(path)")
                #expect(Self.error(unknown)?.contains("GET /api/devices/<device>/readings") == true, "\(path)")
            }
        }
    }

    @Test func routeAndQueryParametersAreChecked() async throws {
        try await Self.withClient(Bridge()) { client in
            let cases: [(String, HTTPResponse.Status, String)] = [
                ("/api/devices/a+b/readings", .badRequest, "contains '+'"),
                ("/api/devices/bridge/readings", .badRequest, "reserved"),
                ("/api/devices/uno1/readings?limt=5", .badRequest, #"unknown query parameter "limt""#),
                ("/api/devices/uno1/readings?since=noon", .badRequest, "not an ISO-8601 time"),
                ("/api/devices/uno1/readings?limit=0", .badRequest, "from 1 to 1000"),
                ("/api/devices?x=1", .badRequest, "this route takes none"),
                // No twin table here: the caller is told why.
                ("/api/devices/uno1/readings?since=2026-11-24T12:00:00%2B01:00&limit=5", .notImplemented, "no twin table"),
            ]
            for (uri, status, words) in cases {
                let response = try await client.execute(uri: uri, method: .get, headers: Self.api())
                #expect(response.status == status, "\(uri): \(String(buffer: response.body))")
                #expect(Self.error(response)?.contains(words) == true, "\(uri): \(String(buffer: response.body))")
            }
        }
    }

    @Test func aCommandGoesToTheDeviceNamedInThePath() async throws {
        let bridge = Bridge()
        try await Self.withClient(bridge) { client in
            let sent = try await client.execute(
                uri: "/api/devices/uno1/commands", method: .post, headers: Self.api(), body: ByteBuffer(string: "LIG\n"))
            #expect(sent.status == .ok, "\(String(buffer: sent.body))")
            let json = try await client.execute(
                uri: "/api/devices/uno1/commands", method: .post, headers: Self.api(json: true), body: ByteBuffer(string: #"{"command": "ACK"}"#))
            #expect(json.status == .ok)
            for bad in ["", "a\nb", String(repeating: "x", count: 2000)] {
                let refused = try await client.execute(
                    uri: "/api/devices/uno1/commands", method: .post, headers: Self.api(), body: ByteBuffer(string: bad))
                #expect(refused.status.code >= 400 && refused.status.code < 500, "\(bad.prefix(10).debugDescription)")
            }
        }
        #expect(bridge.sent.withLock { $0 } == [.init(command: "LIG", device: "uno1"), .init(command: "ACK", device: "uno1")])
    }

    // MARK: /twilio/ipcommands

    static func ipCommand(_ client: any TestClientProtocol, signed: Bool = true) async throws -> TestResponse {
        let parameters = [
            ("Sid", "HG" + String(repeating: "1", count: 32)), ("SimUniqueName", "cell1"), ("Direction", "from_sim"),
            ("PayloadType", "binary"), ("Payload", Data("sim-cell1 data 9".utf8).base64EncodedString()),
        ]
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if signed {
            headers[HTTPField.Name("X-Twilio-Signature")!] = TwilioWebhookSigner.signature(
                url: publicURL + "/twilio/ipcommands", parameters: parameters, authToken: authToken)
        }
        return try await client.execute(
            uri: "/twilio/ipcommands", method: .post, headers: headers, body: ByteBuffer(string: TwilioWebhookSigner.formBody(parameters)))
    }

    @Test func anIPCommandIsAcknowledgedOnlyOnceTakenIn() async throws {
        let bridge = Bridge()
        try await Self.withClient(bridge) { client in
            #expect(try await Self.ipCommand(client, signed: false).status == .forbidden)
            #expect(bridge.ingested.withLock { $0.isEmpty })
            let taken = try await Self.ipCommand(client)
            #expect(taken.status == .ok && String(buffer: taken.body).hasPrefix("received"))
        }
        #expect(bridge.ingested.withLock { $0.map(\.device) } == ["cell1"])
        #expect(bridge.ingested.withLock { $0.first?.payload } == Array("sim-cell1 data 9".utf8))
        for (refusal, status) in [
            (IntakeRefusal(.unavailable, "the spool refuses it"), HTTPResponse.Status.serviceUnavailable),
            (IntakeRefusal(.tooLarge, "payload over maxPayload"), .contentTooLarge),
        ] {
            try await Self.withClient(Bridge(refusal: refusal)) { client in
                let answer = try await Self.ipCommand(client)
                #expect(answer.status == status)
            }
        }
    }
}
