import AsyncHTTPClient
import DTwinContract
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Twilio's REST API, the two calls dtwin makes: create a Message (SMS) and create an IP
/// Command (Super SIM). Requests look like twilio-python's: form-encoded, Basic auth,
/// `Accept: application/json`. Base URLs are configuration, so tests point them at a local
/// server that checks what Twilio checks.
public struct TwilioClient: Sendable {
    /// What Twilio answered when it accepted a request.
    public struct Accepted: Sendable, Equatable {
        /// `SM…` for a message, `HG…` for an IP command.
        public let sid: String
        /// `queued`, `accepted`, `sent`…
        public let status: String
    }

    /// The UDP port the device listens on for IP commands (Twilio's examples use 6969).
    public static let ipCommandDevicePort = 6969
    static let maxAnswerBytes = 1 << 20

    public let credentials: TwilioCredentials
    let apiBase: String
    let superSimBase: String
    let timeout: Duration
    let client: HTTPClient

    public init(
        credentials: TwilioCredentials, apiBase: String, superSimBase: String, timeout: Duration = .seconds(15),
        client: HTTPClient
    ) {
        self.credentials = credentials
        self.apiBase = apiBase.trimmingTrailingSlashes()
        self.superSimBase = superSimBase.trimmingTrailingSlashes()
        self.timeout = timeout
        self.client = client
    }

    /// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
    public func sendMessage(
        to: PhoneNumber, from: String, body: String, statusCallback: String?
    ) async throws(TwilioError) -> Accepted {
        var form = [FormParameter(name: "To", value: to.rawValue), .init(name: "From", value: from), .init(name: "Body", value: body)]
        if let statusCallback { form.append(.init(name: "StatusCallback", value: statusCallback)) }
        let path = "/2010-04-01/Accounts/\(FormEncoding.escape(credentials.accountSid))/Messages.json"
        return try await post(apiBase + path, form: form)
    }

    /// `POST {superSimBase}/v1/IpCommands`: a text payload to the SIM's device port.
    public func sendIPCommand(sim: String, payload: String) async throws(TwilioError) -> Accepted {
        try await post(
            superSimBase + "/v1/IpCommands",
            form: [
                .init(name: "Sim", value: sim), .init(name: "Payload", value: payload),
                .init(name: "DevicePort", value: "\(Self.ipCommandDevicePort)"), .init(name: "PayloadType", value: "text"),
            ])
    }

    func post(_ url: String, form: [FormParameter]) async throws(TwilioError) -> Accepted {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        let basic = Data("\(credentials.accountSid):\(credentials.authToken)".utf8).base64EncodedString()
        request.headers.add(name: "Authorization", value: "Basic \(basic)")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "User-Agent", value: "dtwin")
        request.body = .bytes(ByteBuffer(string: FormEncoding.encode(form)))

        let status: Int
        let body: [UInt8]
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            status = Int(response.status.code)
            body = Array(try await response.body.collect(upTo: Self.maxAnswerBytes).readableBytesView)
        } catch {
            throw TwilioError(.transport(Self.describe(error)))
        }
        let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        guard (200..<300).contains(status) else {
            let message = json?["message"] as? String ?? String(decoding: body.prefix(200), as: UTF8.self)
            throw TwilioError(.api(status: status, code: json?["code"] as? Int, message: message))
        }
        guard let sid = json?["sid"] as? String else {
            throw TwilioError(.unexpectedAnswer("HTTP \(status) without a sid"))
        }
        return Accepted(sid: sid, status: json?["status"] as? String ?? "")
    }

    static func describe(_ error: any Error) -> String {
        switch error as? HTTPClientError {
        case .deadlineExceeded?: "no answer within the timeout"
        case .connectTimeout?: "connection timed out"
        case .remoteConnectionClosed?: "the server closed the connection"
        default: "\(error)"
        }
    }
}
