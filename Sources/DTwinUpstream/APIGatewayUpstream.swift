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
    /// Answers larger than this are refused (dead-lettered): API Gateway answers are small.
    static let maxAnswerBytes = 1 << 20

    let url: String
    /// `url` and the separator its query continues with, worked out once.
    let urlBeforeQuery: String
    let method: HTTPMethod
    let headers: HTTPHeaders
    let timeout: Duration
    let client: HTTPClient
    let executors: [EventLoopTaskExecutor]

    public init(url: String, post: Bool, timeout: Duration, client: HTTPClient) {
        self.url = url
        self.urlBeforeQuery = url + (url.contains("?") ? "&" : "?")
        self.method = post ? .POST : .GET
        var headers = HTTPHeaders([("User-Agent", "dtwin"), ("Accept", "application/json")])
        if post { headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded") }
        self.headers = headers
        self.timeout = timeout
        self.client = client
        self.executors = EventLoopTaskExecutor.forEachLoop(of: client.eventLoopGroup)
    }

    public var workerExecutors: [any TaskExecutor] { executors }

    public func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    public func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    func send(parameters: [IoTEvent.Parameter], logger: Logger) async -> DeliveryOutcome {
        let form = FormEncoding.encode(parameters)
        let response: HTTPClient.Response
        do {
            let request = try HTTPClient.Request(
                url: urlBeforeQuery + form, method: method, headers: headers,
                body: method == .POST ? .string(form) : nil)
            // The future-based API reads the whole answer on the connection's event loop and
            // resumes this task once; the streaming API costs extra thread hops per request,
            // and this is the hot path of every delivery.
            let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maxAnswerBytes)
            // A worker running on one of the client's event loops keeps the whole exchange there.
            let loop = executors.first { $0.eventLoop.inEventLoop }?.eventLoop
            response = try await client.execute(
                request: request, delegate: accumulator, eventLoop: loop.map { .delegate(on: $0) } ?? .indifferent,
                deadline: .now() + .nanoseconds(timeout.nanoseconds)
            ).futureResult.get()
        } catch is ResponseAccumulator.ResponseTooBigError {
            // Not a sane API Gateway answer; retrying would only fetch it again.
            return .reject(reason: "the upstream's answer is over \(Self.maxAnswerBytes) bytes")
        } catch {
            return .retry(reason: "\(method) \(Self.redactedOrigin(url)) failed: \(Self.describe(error))")
        }
        let body = response.body.map { Array($0.readableBytesView) } ?? []
        return UpstreamAnswer.classify(status: Int(response.status.code), body: body)
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
