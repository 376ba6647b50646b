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
    let url: String
    /// `url` and the separator its query continues with, worked out once.
    let urlBeforeQuery: String
    let method: HTTPMethod
    let headers: HTTPHeaders
    let exchange: UpstreamExchange

    public init(url: String, post: Bool, timeout: Duration, client: HTTPClient) {
        self.url = url
        self.urlBeforeQuery = url + (url.contains("?") ? "&" : "?")
        self.method = post ? .POST : .GET
        var headers = HTTPHeaders([("User-Agent", "dtwin"), ("Accept", "application/json")])
        if post { headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded") }
        self.headers = headers
        self.exchange = UpstreamExchange(client: client, timeout: timeout)
    }

    public var workerExecutors: [any TaskExecutor] { exchange.executors }

    public func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    public func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome {
        await send(parameters: event.parameters, logger: logger)
    }

    func send(parameters: [IoTEvent.Parameter], logger: Logger) async -> DeliveryOutcome {
        let form = FormEncoding.encode(parameters)
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(
                url: urlBeforeQuery + form, method: method, headers: headers, body: method == .POST ? .string(form) : nil)
        } catch {
            return .reject(reason: "upstream.url cannot be requested: \(error)")
        }
        switch await exchange.send(request, target: Self.redactedOrigin(url)) {
        case .success(let response):
            let body = response.body.map { Array($0.readableBytesView) } ?? []
            return UpstreamAnswer.classify(status: Int(response.status.code), body: body)
        case .failure(let failure):
            return failure.outcome
        }
    }

    /// Scheme, host and port only: invoke URLs can carry keys in their query.
    static func redactedOrigin(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return "the upstream" }
        let rest = url[schemeEnd.upperBound...]
        let host = rest.prefix { $0 != "/" && $0 != "?" }
        return String(url[..<schemeEnd.upperBound]) + host
    }
}
