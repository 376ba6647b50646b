import AsyncHTTPClient
import DTwinContract
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// `upstream.mode: apigw` — an HTTP request to the API Gateway invoke URL with the event's
/// parameters in the query string, so API Gateway builds the proxy event itself. `POST`
/// carries the same parameters as a form body too, the way Twilio's own webhooks POST them.
public struct APIGatewayUpstream: Upstream {
    public let name = "apigw"
    /// Answers larger than this are not read for a reply.
    static let maxAnswerBytes = 1 << 20

    let url: String
    let method: HTTPMethod
    let timeout: Duration
    let client: HTTPClient

    public init(url: String, post: Bool, timeout: Duration, client: HTTPClient) {
        self.url = url
        self.method = post ? .POST : .GET
        self.timeout = timeout
        self.client = client
    }

    public func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    public func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    func send(parameters: [IoTEvent.Parameter], logger: Logger) async -> DeliveryOutcome {
        let form = parameters.map { "\(FormEncoding.escape($0.name))=\(FormEncoding.escape($0.value))" }
            .joined(separator: "&")
        var request = HTTPClientRequest(url: url + (url.contains("?") ? "&" : "?") + form)
        request.method = method
        request.headers.add(name: "User-Agent", value: "dtwin")
        request.headers.add(name: "Accept", value: "application/json")
        if method == .POST {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        let status: Int
        let body: [UInt8]
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            status = Int(response.status.code)
            do {
                let buffer = try await response.body.collect(upTo: Self.maxAnswerBytes)
                body = Array(buffer.readableBytesView)
            } catch is NIOTooManyBytesError {
                // A 2xx answer with a huge body still means "delivered": only the reply is lost.
                return (200..<300).contains(status)
                    ? .delivered(reply: nil, note: "the answer is over \(Self.maxAnswerBytes) bytes; not read for a reply")
                    : UpstreamAnswer.classify(status: status, body: [])
            }
        } catch {
            return .retry(reason: "\(method) \(Self.redactedOrigin(url)) failed: \(Self.describe(error))")
        }
        return UpstreamAnswer.classify(status: status, body: body)
    }

    /// Scheme, host and port only: invoke URLs can carry keys in their query.
    static func redactedOrigin(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "the upstream" }
        let rest = url[schemeEnd.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" }
        return String(url[..<schemeEnd.upperBound]) + host
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded: return "no answer within the timeout"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
