import AsyncHTTPClient
import DTwinAWS
import DTwinContract
import Foundation
import NIOCore
import NIOHTTP1

/// DynamoDB's JSON API (`X-Amz-Target: DynamoDB_20120810.<Operation>`), SigV4-signed, over
/// AsyncHTTPClient. Throttling and server errors are retried with backoff; everything else
/// comes back as an ``AWSError`` that says what to fix.
public struct DynamoDBClient: Sendable {
    public let endpoint: String
    public let region: String
    let signer: SigV4
    let http: HTTPClient
    let host: String
    let timeout: Duration
    /// Attempts for throttled or failed-on-the-server requests, with 50 ms, 100 ms, … between.
    let attempts: Int

    /// `endpoint` empty: AWS's own for `region`.
    public init(
        endpoint: String, region: String, credentials: AWSCredentials, http: HTTPClient, timeout: Duration = .seconds(10),
        attempts: Int = 5
    ) throws(AWSError) {
        let resolved = try AWSEndpoint(service: "dynamodb", region: region, override: endpoint, key: "store.endpoint")
        self.endpoint = resolved.url
        self.region = region
        self.host = resolved.host
        self.signer = SigV4(credentials: credentials, region: region, service: "dynamodb")
        self.http = http
        self.timeout = timeout
        self.attempts = attempts
    }

    /// Calls `operation` with `body`; returns the answer's JSON object.
    public func call(_ operation: String, _ body: [String: JSONValue]) async throws(AWSError) -> [String: JSONValue] {
        let bytes: [UInt8]
        do { bytes = Array(try JSONEncoder().encode(body)) } catch {
            throw AWSError(.validation, "\(operation): the request could not be encoded: \(error)")
        }
        var attempt = 0
        while true {
            attempt += 1
            let failure: AWSError
            do throws(AWSError) {
                return try await send(operation, bytes)
            } catch {
                failure = error
            }
            guard failure.code == .retryable, attempt < attempts else { throw failure }
            try? await Task.sleep(for: .milliseconds(50 << (attempt - 1)))
        }
    }

    func send(_ operation: String, _ body: [UInt8]) async throws(AWSError) -> [String: JSONValue] {
        let headers = [
            ("Host", host), ("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.\(operation)"),
        ]
        let signing = signer.signingHeaders(for: SigV4.Request(method: "POST", path: "/", headers: headers, body: body), at: Date())
        var request = HTTPClientRequest(url: endpoint + "/")
        request.method = .POST
        for (name, value) in headers + signing where name != "Host" { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let status: Int
        let answer: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            status = Int(response.status.code)
            answer = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw AWSError(.transport, "DynamoDB at \(endpoint) did not answer \(operation): \(error)")
        }
        let json = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(answer.readableBytesView))) ?? [:]
        if (200..<300).contains(status) { return json }
        throw Self.error(status: status, json: json, text: String(buffer: answer), operation: operation)
    }

    /// DynamoDB's `__type` (`com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`) in
    /// words; an XML error (`<Code>`, `<Message>`, as AWS's front door sends) is read too.
    static func error(status: Int, json: [String: JSONValue], text: String, operation: String) -> AWSError {
        let type = json["__type"]?.stringValue.map { String($0.split(separator: "#").last ?? "") } ?? element("Code", in: text) ?? ""
        let message = (json["message"] ?? json["Message"])?.stringValue ?? element("Message", in: text) ?? "HTTP \(status)"
        let said = "DynamoDB refused \(operation) (\(type.isEmpty ? "HTTP \(status)" : type)): \(message)"
        switch type {
        case "ResourceNotFoundException":
            return AWSError(.notFound, said)
        case "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException",
            "AccessDeniedException", "ExpiredTokenException", "IncompleteSignatureException":
            return AWSError(.badCredentials, "\(said) (check the AWS credentials and region)")
        case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
            "InternalServerError", "ServiceUnavailable", "LimitExceededException":
            return AWSError(.retryable, said)
        case "ConditionalCheckFailedException":
            return AWSError(.conditionFailed, said)
        default:
            if status == 401 || status == 403 { return AWSError(.badCredentials, "\(said) (check the AWS credentials and region)") }
            return AWSError(status >= 500 ? .retryable : .validation, said)
        }
    }

    static func element(_ name: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex)
        else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }
}

extension JSONValue {
    /// `{"S": text}`.
    static func s(_ text: String) -> JSONValue { .object(["S": .string(text)]) }
    /// `{"N": "734"}`: DynamoDB numbers travel as strings.
    static func n(_ number: Double) -> JSONValue { .object(["N": .string(number.readingText)]) }
}
