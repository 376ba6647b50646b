import AsyncHTTPClient
import DTwinAWS
import DTwinContract
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// `upstream.mode: lambda` — the Lambda Invoke API (README: "The IoT event"): `POST
/// /2015-03-31/functions/<name>/invocations`, SigV4-signed for service `lambda`, with the full
/// API Gateway proxy event as the payload, so the seed's function runs unchanged.
public struct LambdaUpstream: Upstream {
    public let name = "lambda"
    /// Lambda refuses synchronous payloads over 6 MB; a device message is far smaller.
    static let maxPayloadBytes = 6 * 1024 * 1024

    let endpoint: String
    let path: String
    let host: String
    let signer: SigV4
    let exchange: UpstreamExchange
    let encoder: JSONEncoder

    /// `function`: a name, a partial or a full ARN. `endpoint` empty: AWS's own for `region`.
    public init(
        function: String, endpoint: String, region: String, credentials: AWSCredentials, timeout: Duration, client: HTTPClient
    ) throws(AWSError) {
        guard !function.isEmpty else { throw AWSError(.validation, "upstream.function is empty: name the Lambda function to invoke") }
        let resolved = try AWSEndpoint(service: "lambda", region: region, override: endpoint, key: "upstream.endpoint")
        self.endpoint = resolved.url
        // The SDKs percent-encode the name (an ARN's colons too); SigV4 then encodes the path again.
        self.path = "/2015-03-31/functions/\(FormEncoding.escape(function))/invocations"
        self.host = resolved.host
        self.signer = SigV4(credentials: credentials, region: region, service: "lambda")
        self.exchange = UpstreamExchange(client: client, timeout: timeout)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        self.encoder = encoder
    }

    /// The region to sign for: the one in a function ARN (`arn:aws:lambda:REGION:…`), else
    /// `fallback` (the AWS environment's region, else `store.region`).
    public static func region(of function: String, fallback: String) -> String {
        let parts = function.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count >= 4, parts[0] == "arn", parts[2] == "lambda", !parts[3].isEmpty { return String(parts[3]) }
        return fallback
    }

    public var workerExecutors: [any TaskExecutor] { exchange.executors }

    public func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome {
        await invoke(event.proxyEvent())
    }

    public func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome {
        await invoke(event)
    }

    func invoke(_ payload: some Encodable) async -> DeliveryOutcome {
        let body: [UInt8]
        do { body = Array(try encoder.encode(payload)) } catch {
            return .reject(reason: "the event could not be encoded as JSON: \(error)")
        }
        guard body.count <= Self.maxPayloadBytes else { return .reject(reason: "the event is over Lambda's 6 MB payload limit") }
        let headers = [("Host", host), ("Content-Type", "application/json"), ("X-Amz-Invocation-Type", "RequestResponse")]
        let signing = signer.signingHeaders(for: SigV4.Request(method: "POST", path: path, headers: headers, body: body), at: Date())
        let request: HTTPClient.Request
        do {
            var fields = HTTPHeaders([("User-Agent", "dtwin")])
            for (name, value) in headers + signing where name != "Host" { fields.add(name: name, value: value) }
            request = try HTTPClient.Request(url: endpoint + path, method: .POST, headers: fields, body: .bytes(body))
        } catch {
            return .reject(reason: "the Lambda endpoint cannot be requested: \(error)")
        }
        switch await exchange.send(request, target: endpoint) {
        case .success(let response):
            return Self.classify(
                status: Int(response.status.code), functionError: response.headers.first(name: "X-Amz-Function-Error"),
                errorType: response.headers.first(name: "X-Amzn-ErrorType"),
                body: response.body.map { Array($0.readableBytesView) } ?? [])
        case .failure(let failure):
            return failure.outcome
        }
    }

    /// The Invoke API's answer as a delivery outcome. Pure.
    ///
    /// - 200 with `X-Amz-Function-Error`: the function threw; its `errorType: errorMessage` is
    ///   the dead letter's reason (running it again would throw again).
    /// - 200: the function's result, read by ``UpstreamAnswer/classifyLambdaResult(_:)``.
    /// - Lambda's own errors (`X-Amzn-ErrorType`): throttling, 5xx and a function still being
    ///   updated are retried. So are refused credentials: the message is fine, the gateway's
    ///   credentials are not, and `upstream.retry.maxAge` still bounds how long it waits.
    ///   Anything else (no such function, a bad request) is a dead letter.
    public static func classify(status: Int, functionError: String?, errorType: String?, body: [UInt8]) -> DeliveryOutcome {
        let json = JSONValue.parse(body)
        if status == 200, let functionError {
            let type = json?["errorType"]?.stringValue ?? functionError
            let message = json?["errorMessage"]?.stringValue ?? String(decoding: body.prefix(200), as: UTF8.self)
            return .reject(reason: "the Lambda function failed (\(functionError)): \(type): \(message)")
        }
        if (200..<300).contains(status) { return UpstreamAnswer.classifyLambdaResult(body) }
        // `ResourceNotFoundException:http://internal.amazon.com/…`: the name is before the colon.
        let type = errorType.map { String($0.prefix { $0 != ":" }) } ?? json?["__type"]?.stringValue ?? "HTTP \(status)"
        let message = (json?["message"] ?? json?["Message"])?.stringValue ?? ""
        let said = "Lambda answered \(status) \(type)\(message.isEmpty ? "" : ": \(message)")"
        if credentialErrors.contains(type) || status == 401 {
            return .retry(reason: "\(said) (check the AWS credentials, region and clock)")
        }
        if status == 429 || status == 408 || status >= 500 || retriedErrors.contains(type) { return .retry(reason: said) }
        return .reject(reason: said)
    }

    static let credentialErrors: Set<String> = [
        "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException",
        "ExpiredTokenException", "IncompleteSignatureException", "AccessDeniedException",
    ]
    /// 4xx errors that pass: a function being updated, or not ready yet after creation.
    static let retriedErrors: Set<String> = ["ResourceConflictException", "ResourceNotReadyException", "TooManyRequestsException"]
}
