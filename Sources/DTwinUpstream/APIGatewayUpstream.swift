import AsyncHTTPClient
import DTwinAWS
import DTwinContract
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// An upstream URL that cannot be used, said in words (without anything secret in the URL).
public struct UpstreamURLError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// `upstream.mode: apigw` — an HTTP request to the API Gateway invoke URL with the event's
/// parameters in the query string, so API Gateway builds the proxy event itself. `POST`
/// carries the same parameters as a form body too, the way Twilio's own webhooks POST them.
/// With `upstream.auth: iam` every request is signed (SigV4, service `execute-api`) for an
/// `AWS_IAM` route such as the cloud stack's `POST /bridge`.
public struct APIGatewayUpstream: Upstream {
    public let name = "apigw"
    let url: String
    /// The request target (`url`'s path and own query) and the separator the event's query
    /// continues with, worked out once.
    let targetBeforeQuery: String
    let method: HTTPMethod
    let headers: HTTPHeaders
    let client: KeepAliveHTTPClient
    let executors: [EventLoopTaskExecutor]
    let timeout: Duration
    let signing: Signing?

    /// What SigV4 signs besides the parameters: the URL's host, path and own query, as sent.
    struct Signing: Sendable {
        let signer: SigV4
        let host: String
        let path: String
        let query: [(String, String)]
    }

    /// `signer`: SigV4 for `execute-api` (`upstream.auth: iam`), or `nil` to send unsigned.
    /// Requests run on `client`'s event loops, over connections of their own
    /// (``KeepAliveHTTPClient``); `tls` replaces the system's trust roots (tests).
    public init(
        url: String, post: Bool, timeout: Duration, client: HTTPClient, signer: SigV4? = nil, tls: TLSConfiguration? = nil
    ) throws(UpstreamURLError) {
        self.url = url
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = parsed.host, !host.isEmpty
        else {
            throw UpstreamURLError("upstream.url \(Self.redactedOrigin(url)) is not an http:// or https:// URL with a host")
        }
        let origin = KeepAliveHTTPClient.Origin(tls: scheme == "https", host: host, port: parsed.port ?? (scheme == "https" ? 443 : 80))
        let path = parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath
        let ownQuery = parsed.percentEncodedQuery.map { "?" + $0 } ?? ""
        self.targetBeforeQuery = path + ownQuery + (ownQuery.isEmpty ? "?" : "&")
        self.method = post ? .POST : .GET
        var headers = HTTPHeaders([("User-Agent", "dtwin"), ("Accept", "application/json")])
        if post { headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded") }
        self.headers = headers
        self.timeout = timeout
        do {
            self.client = try KeepAliveHTTPClient(origin: origin, group: client.eventLoopGroup, connectTimeout: .seconds(5), tls: tls)
        } catch {
            throw UpstreamURLError("upstream.url \(Self.redactedOrigin(url)): TLS cannot be set up: \(error)")
        }
        self.executors = EventLoopTaskExecutor.forEachLoop(of: client.eventLoopGroup)
        if let signer {
            let query = (try? FormEncoding.decode(Array((parsed.percentEncodedQuery ?? "").utf8))) ?? []
            self.signing = Signing(
                signer: signer, host: origin.hostHeader,
                path: parsed.percentEncodedPath.isEmpty ? "/" : parsed.percentEncodedPath,
                query: query.map { ($0.name, $0.value) })
        } else {
            self.signing = nil
        }
    }

    /// The region in an invoke URL (`https://<id>.execute-api.<region>.amazonaws.com/<stage>/…`),
    /// or `nil` for another host (a custom domain: then the AWS environment's region is used).
    public static func region(ofInvokeURL url: String) -> String? {
        guard let host = URLComponents(string: url)?.host else { return nil }
        let labels = host.split(separator: ".")
        guard labels.count >= 5, labels[1] == "execute-api", labels[3] == "amazonaws" else { return nil }
        return String(labels[2])
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
        let body = method == .POST ? form : nil
        var headers = self.headers
        if let signing {
            // The query is sent escaped exactly as SigV4's canonical form escapes it.
            let request = SigV4.Request(
                method: method.rawValue, path: signing.path, query: signing.query + parameters.map { ($0.name, $0.value) },
                headers: [("Host", signing.host)], body: Array((body ?? "").utf8))
            for (name, value) in signing.signer.signingHeaders(for: request, at: Date()) { headers.add(name: name, value: value) }
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: targetBeforeQuery + form, headers: headers)
        do {
            let response = try await client.execute(
                head: head, body: body.map { ByteBuffer(string: $0) }, deadline: .now() + .nanoseconds(timeout.nanoseconds),
                maxBodyBytes: UpstreamExchange.maxAnswerBytes)
            return Self.classify(
                status: Int(response.status.code), errorType: response.headers.first(name: "x-amzn-ErrorType"),
                body: Array(response.body.readableBytesView))
        } catch KeepAliveHTTPClient.Failure.tooBig {
            // Not a sane answer; retrying would only fetch it again.
            return .reject(reason: "the upstream's answer is over \(UpstreamExchange.maxAnswerBytes) bytes")
        } catch {
            return .retry(reason: "\(method) \(Self.redactedOrigin(url)) failed: \(error)")
        }
    }

    /// Closes the idle connections.
    public func close() async { await client.close() }

    /// The answer as a delivery outcome. Pure. API Gateway's own 403s (`x-amzn-ErrorType` a
    /// signature or token error; `MissingAuthenticationTokenException` also means no such route)
    /// are retried: the message is fine, the gateway's settings or credentials are not, and
    /// `upstream.retry.maxAge` still bounds the wait. Everything else as ``UpstreamAnswer``.
    public static func classify(status: Int, errorType: String?, body: [UInt8]) -> DeliveryOutcome {
        if status == 403, let errorType {
            let type = String(errorType.prefix { $0 != ":" })
            if LambdaUpstream.credentialErrors.contains(type) {
                let message = JSONValue.parse(body)?["message"]?.stringValue ?? ""
                return .retry(
                    reason: "API Gateway refused the request (\(type)\(message.isEmpty ? "" : ": \(message)")): check upstream.url, "
                        + "upstream.auth and the AWS credentials, region and clock")
            }
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
}
