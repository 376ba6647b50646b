import Foundation
import Synchronization

/// A local stand-in for Twilio's REST API (Messages and Super SIM IP Commands) on 127.0.0.1.
///
/// It checks what Twilio checks — Basic auth against the account, the account in the path,
/// the form content type, the required fields, E.164 numbers, Twilio's length limits — and
/// answers in Twilio's shapes: 201 with the resource, or `{"code", "message", "more_info",
/// "status"}` errors. Tests script failures with ``failNext(_:times:)``.
///
/// Forms are decoded here with Foundation's `URLComponents`, independently of dtwin's encoder.
public final class TwilioAPIServer: Sendable {
    public struct Message: Sendable, Equatable {
        public var sid: String
        public var to: String
        public var from: String
        public var body: String
        public var statusCallback: String?

        public init(sid: String, to: String, from: String, body: String, statusCallback: String?) {
            self.sid = sid
            self.to = to
            self.from = from
            self.body = body
            self.statusCallback = statusCallback
        }
    }

    public struct IPCommand: Sendable, Equatable {
        public var sid: String
        public var sim: String
        public var payload: String
        public var devicePort: String
        public var payloadType: String

        public init(sid: String, sim: String, payload: String, devicePort: String, payloadType: String) {
            self.sid = sid
            self.sim = sim
            self.payload = payload
            self.devicePort = devicePort
            self.payloadType = payloadType
        }
    }

    /// A scripted error answer.
    public struct Failure: Sendable {
        public var status: Int
        public var code: Int
        public var message: String

        public static let tooManyRequests = Failure(status: 429, code: 20429, message: "Too Many Requests")
        public static let serverError = Failure(status: 500, code: 20500, message: "Internal Server Error")
        public static let invalidTo = Failure(status: 400, code: 21211, message: "The 'To' number is not a valid phone number.")

        public init(status: Int, code: Int, message: String) {
            self.status = status
            self.code = code
            self.message = message
        }
    }

    struct State {
        var messages: [Message] = []
        var ipCommands: [IPCommand] = []
        var failures: [Failure] = []
        var refusals: [String] = []
        var sequence = 0
    }

    public let accountSid: String
    let authToken: String
    let state = Mutex(State())
    private let receiver: HTTPReceiver

    public var baseURL: String { "http://127.0.0.1:\(receiver.port)" }
    public var messages: [Message] { state.withLock { $0.messages } }
    public var ipCommands: [IPCommand] { state.withLock { $0.ipCommands } }
    /// Why each refused request was refused (auth, missing fields…), in order.
    public var refusals: [String] { state.withLock { $0.refusals } }
    public var requestCount: Int { receiver.requestCount }

    public static func start(accountSid: String, authToken: String) async throws -> TwilioAPIServer {
        try await HTTPReceiver.start(serving: { TwilioAPIServer(accountSid: accountSid, authToken: authToken, receiver: $0) }) {
            $0.answer($1)
        }
    }

    private init(accountSid: String, authToken: String, receiver: HTTPReceiver) {
        self.accountSid = accountSid
        self.authToken = authToken
        self.receiver = receiver
    }

    public func stop() async { await receiver.stop() }

    /// The next `times` accepted-looking requests get `failure` instead.
    public func failNext(_ failure: Failure, times: Int = 1) {
        state.withLock { $0.failures += Array(repeating: failure, count: times) }
    }

    // MARK: the contract

    func answer(_ request: HTTPReceiver.Request) -> HTTPReceiver.Answer {
        guard request.method == "POST" else { return refuse(405, 20004, "Method not allowed", why: "method \(request.method)") }
        guard request.headers["authorization"] == "Basic " + Data("\(accountSid):\(authToken)".utf8).base64EncodedString() else {
            return refuse(401, 20003, "Authenticate", why: "bad or missing Basic auth")
        }
        guard request.headers["content-type"]?.hasPrefix("application/x-www-form-urlencoded") == true else {
            return refuse(400, 20001, "Content-Type must be application/x-www-form-urlencoded", why: "content type")
        }
        guard let form = Self.decodeForm(request.body) else {
            return refuse(400, 20001, "Malformed form body", why: "form body")
        }
        if request.path == "/2010-04-01/Accounts/\(accountSid)/Messages.json" {
            return createMessage(form)
        }
        if request.path.hasPrefix("/2010-04-01/Accounts/") {
            return refuse(404, 20404, "The requested resource \(request.path) was not found", why: "account in path")
        }
        if request.path == "/v1/IpCommands" {
            return createIPCommand(form)
        }
        return refuse(404, 20404, "The requested resource \(request.path) was not found", why: "path \(request.path)")
    }

    func createMessage(_ form: [String: String]) -> HTTPReceiver.Answer {
        guard let to = form["To"], !to.isEmpty else { return refuse(400, 21604, "A 'To' phone number is required.", why: "To") }
        guard Self.isE164(to) else { return refuse(400, 21211, "The 'To' number \(to) is not a valid phone number.", why: "To shape") }
        guard let from = form["From"], !from.isEmpty else {
            return refuse(400, 21603, "A 'From' phone number is required.", why: "From")
        }
        guard let body = form["Body"], !body.isEmpty else { return refuse(400, 21602, "Message body is required.", why: "Body") }
        guard body.count <= 1600 else {
            return refuse(400, 21617, "The concatenated message body exceeds the 1600 character limit.", why: "Body length")
        }
        if let failure = takeFailure() { return failure }
        let sid = nextSid("SM")
        state.withLock {
            $0.messages.append(Message(sid: sid, to: to, from: from, body: body, statusCallback: form["StatusCallback"]))
        }
        return created([
            "sid": sid, "account_sid": accountSid, "to": to, "from": from, "body": body, "status": "queued",
            "direction": "outbound-api", "num_segments": "1", "api_version": "2010-04-01", "price": NSNull(),
            "error_code": NSNull(), "error_message": NSNull(),
            "uri": "/2010-04-01/Accounts/\(accountSid)/Messages/\(sid).json",
        ])
    }

    func createIPCommand(_ form: [String: String]) -> HTTPReceiver.Answer {
        guard let sim = form["Sim"], !sim.isEmpty else { return refuse(400, 20001, "Missing required parameter Sim in the post body", why: "Sim") }
        guard let payload = form["Payload"] else { return refuse(400, 20001, "Missing required parameter Payload in the post body", why: "Payload") }
        guard let port = form["DevicePort"], let number = Int(port), (1...65535).contains(number) else {
            return refuse(400, 20001, "Missing required parameter DevicePort in the post body", why: "DevicePort")
        }
        let type = form["PayloadType"] ?? "text"
        guard type == "text" || type == "binary", payload.utf8.count <= 1300 else {
            return refuse(400, 20001, "Invalid Payload or PayloadType", why: "payload")
        }
        if let failure = takeFailure() { return failure }
        let sid = nextSid("HG")
        state.withLock { $0.ipCommands.append(IPCommand(sid: sid, sim: sim, payload: payload, devicePort: port, payloadType: type)) }
        return created([
            "sid": sid, "account_sid": accountSid, "sim_sid": "HS" + String(repeating: "0", count: 32), "sim_iccid": "89883070000000000000",
            "status": "queued", "direction": "to_sim", "device_port": number, "payload_type": type, "payload": payload,
            "url": "https://supersim.twilio.com/v1/IpCommands/\(sid)",
        ])
    }

    // MARK: helpers

    func takeFailure() -> HTTPReceiver.Answer? {
        guard let failure = state.withLock({ $0.failures.isEmpty ? nil : $0.failures.removeFirst() }) else { return nil }
        return error(failure.status, failure.code, failure.message)
    }

    func refuse(_ status: Int, _ code: Int, _ message: String, why: String) -> HTTPReceiver.Answer {
        state.withLock { $0.refusals.append(why) }
        return error(status, code, message)
    }

    func error(_ status: Int, _ code: Int, _ message: String) -> HTTPReceiver.Answer {
        Self.json(status, ["code": code, "message": message, "more_info": "https://www.twilio.com/docs/errors/\(code)", "status": status])
    }

    func created(_ fields: [String: Any]) -> HTTPReceiver.Answer { Self.json(201, fields) }

    func nextSid(_ prefix: String) -> String {
        let number = state.withLock { state -> Int in
            state.sequence += 1
            return state.sequence
        }
        return prefix + String(format: "%032x", number)
    }

    static func json(_ status: Int, _ fields: [String: Any]) -> HTTPReceiver.Answer {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return .init(status: status, body: String(decoding: data, as: UTF8.self))
    }

    static func isE164(_ number: String) -> Bool {
        number.first == "+" && (8...16).contains(number.count) && number.dropFirst().allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `a=1&b=x+y` decoded with Foundation: `+` is a space in forms, which URLComponents does not know.
    public static func decodeForm(_ body: [UInt8]) -> [String: String]? {
        var components = URLComponents()
        components.percentEncodedQuery = String(decoding: body, as: UTF8.self).replacingOccurrences(of: "+", with: "%20")
        guard let items = components.queryItems else { return body.isEmpty ? [:] : nil }
        var form: [String: String] = [:]
        for item in items where form[item.name] == nil { form[item.name] = item.value ?? "" }
        return form
    }
}
