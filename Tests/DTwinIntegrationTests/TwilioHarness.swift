import AsyncHTTPClient
import DTwinApp
import DTwinConfig
import DTwinContract
import DTwinHTTP
import DTwinTestSupport
import Foundation
import NIOCore
import NIOHTTP1

/// A bridge with Twilio set up: the BridgeHarness (broker, bridge, watcher), a local
/// Twilio-contract server as `twilio.apiBase`/`superSimBase`, and an HTTP client that plays
/// Twilio calling the bridge's webhooks, signing with ``TwilioWebhookSigner``.
final class TwilioHarness: Sendable {
    static let accountSid = "AC" + String(repeating: "b", count: 32)
    static let authToken = "integration-test-token-4f9c"
    static let apiToken = "api-token-123"
    /// What Twilio is told to call; a proxy would forward it to the bridge's own address.
    static let publicURL = "https://bridge.example.com"
    static let alice = "+12065550100"
    static let bob = "+12065550111"
    static let stranger = "+12065550199"

    let bridge: BridgeHarness
    let twilio: TwilioAPIServer
    let port: Int

    init(
        credentials: Bool = true, apiToken: Bool = true, environment extra: [String: String] = [:],
        configure: (inout DTwinConfiguration) -> Void = { _ in }
    ) async throws {
        let twilio = try await TwilioAPIServer.start(accountSid: Self.accountSid, authToken: Self.authToken)
        var environment = extra
        if credentials {
            environment["TWILIO_ACCOUNT_SID"] = Self.accountSid
            environment["TWILIO_AUTH_TOKEN"] = Self.authToken
        }
        if apiToken { environment["DTWIN_API_TOKEN"] = Self.apiToken }
        bridge = try await BridgeHarness(environment: environment) { configuration in
            configuration.http.publicURL = Self.publicURL
            configuration.twilio.apiBase = twilio.baseURL
            configuration.twilio.superSimBase = twilio.baseURL
            configuration.twilio.from = "+15017122661"
            configuration.devices = [
                DeviceName("a")!: .init(phones: [Self.alice, "+1 (206) 555-0111"]),
                DeviceName("b")!: .init(phones: [Self.alice]),
                DeviceName("uno")!: .init(phones: [Self.alice], cellular: true),
            ]
            configure(&configuration)
        }
        self.twilio = twilio
        guard let port = await bridge.application.httpAddress.port() else { throw TestSupportError("the HTTP server did not start") }
        self.port = port
    }

    func stop() async {
        await bridge.stop()
        await twilio.stop()
    }

    struct Answer {
        var status: Int
        var contentType: String
        var body: String
        var allow: String? = nil

        /// The body as a JSON object (`[:]` when it is not one).
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        /// The `error` field of a JSON error answer.
        var error: String? { json["error"] as? String }
    }

    /// POSTs a form to `path` as Twilio would: signed for `publicURL + path` with `token`
    /// (`nil`: no signature header).
    func post(
        _ path: String, _ parameters: [(String, String)], token: String? = TwilioHarness.authToken,
        contentType: String = "application/x-www-form-urlencoded", body: String? = nil
    ) async throws -> Answer {
        try await Self.post(port: port, path, parameters, token: token, contentType: contentType, body: body)
    }

    /// ``post(_:_:token:contentType:body:)`` to a bridge on `port` (one this harness did not start).
    static func post(
        port: Int, _ path: String, _ parameters: [(String, String)], token: String? = TwilioHarness.authToken,
        contentType: String = "application/x-www-form-urlencoded", body: String? = nil
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        if let token {
            let signature = TwilioWebhookSigner.signature(url: Self.publicURL + path, parameters: parameters, authToken: token)
            request.headers.add(name: "X-Twilio-Signature", value: signature)
        }
        request.body = .bytes(ByteBuffer(string: body ?? TwilioWebhookSigner.formBody(parameters)))
        return try await execute(request)
    }

    /// An inbound SMS webhook from `from` with `text`.
    func sms(_ text: String, from: String = TwilioHarness.alice, sid: String = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: ""))
        async throws -> Answer
    {
        try await post(
            "/twilio/sms",
            [("MessageSid", sid), ("AccountSid", Self.accountSid), ("From", from), ("To", "+15017122661"), ("Body", text), ("NumMedia", "0")])
    }

    func get(_ path: String, bearer: String? = TwilioHarness.apiToken) async throws -> Answer {
        try await api(.GET, path, bearer: bearer)
    }

    /// A request to the bridge's own API, with the bearer token unless told otherwise.
    func api(
        _ method: HTTPMethod, _ path: String, body: String? = nil, contentType: String? = nil,
        bearer: String? = TwilioHarness.apiToken, headers: [String: String] = [:]
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        return try await execute(request)
    }

    func execute(_ request: HTTPClientRequest) async throws -> Answer { try await Self.execute(request) }

    /// Through the process-wide client: it needs no shutdown, so a test that throws before
    /// `stop()` cannot leave one behind (a client released unshut stops the whole test process).
    static func execute(_ request: HTTPClientRequest) async throws -> Answer {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(
            status: Int(response.status.code), contentType: response.headers.first(name: "content-type") ?? "",
            body: String(buffer: body), allow: response.headers.first(name: "allow"))
    }

    /// The `<Message>` text of a TwiML answer.
    static func message(in twiml: String) -> String? {
        guard let start = twiml.range(of: "<Message>"), let end = twiml.range(of: "</Message>") else { return nil }
        return String(twiml[start.upperBound..<end.lowerBound])
    }

    func downPayloads(_ device: String) -> [String] { bridge.payloads(on: "dtwin/\(device)/down") }
}
