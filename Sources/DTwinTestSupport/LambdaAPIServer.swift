import DTwinAWS
import Foundation
import Synchronization

/// A local stand-in for the Lambda Invoke API on 127.0.0.1.
///
/// It checks what Lambda's front door checks before a function runs: the route
/// (`POST /2015-03-31/functions/<name>/invocations`), a SigV4 `Authorization` for a known access
/// key, scope `<date>/<region>/lambda/aws4_request`, a fresh `X-Amz-Date`, `host` and
/// `x-amz-date` among the signed headers, the signature itself (recomputed from the request as
/// received), a JSON payload, and that the function exists. It answers in Lambda's shapes:
/// 200 with the function's result (plus `X-Amz-Function-Error` when it threw), or an error with
/// `X-Amzn-ErrorType` and `{"Type", "message"}`.
public final class LambdaAPIServer: Sendable {
    /// What a test function does with an event.
    public enum Result: Sendable {
        /// The function returned this JSON.
        case returned(String)
        /// The function threw (`X-Amz-Function-Error: Unhandled`).
        case threw(type: String, message: String)
    }

    public typealias Function = @Sendable (_ event: [UInt8]) -> Result

    /// A Lambda service error, scripted with ``failNext(_:times:)``.
    public struct ServiceError: Sendable {
        public var status: Int
        public var type: String
        public var message: String

        public static let throttled = ServiceError(status: 429, type: "TooManyRequestsException", message: "Rate Exceeded.")
        public static let serviceException = ServiceError(status: 500, type: "ServiceException", message: "Internal error")

        public init(status: Int, type: String, message: String) {
            self.status = status
            self.type = type
            self.message = message
        }
    }

    /// One invocation that reached a function.
    public struct Invocation: Sendable {
        public var function: String
        public var event: [UInt8]
        public var headers: [String: String]
    }

    struct State {
        var functions: [String: Function] = [:]
        var invocations: [Invocation] = []
        var failures: [ServiceError] = []
        var refusals: [String] = []
    }

    public let region: String
    public let accountID = "123456789012"
    let credentials: AWSCredentials
    let state = Mutex(State())
    private let receiver: HTTPReceiver

    public var endpoint: String { "http://127.0.0.1:\(receiver.port)" }
    public var invocations: [Invocation] { state.withLock { $0.invocations } }
    /// Why each refused request was refused, in order.
    public var refusals: [String] { state.withLock { $0.refusals } }
    public var requestCount: Int { receiver.requestCount }

    public static func start(credentials: AWSCredentials, region: String = "us-west-2") async throws -> LambdaAPIServer {
        try await HTTPReceiver.start(serving: { LambdaAPIServer(credentials: credentials, region: region, receiver: $0) }) {
            $0.answer($1)
        }
    }

    private init(credentials: AWSCredentials, region: String, receiver: HTTPReceiver) {
        self.credentials = credentials
        self.region = region
        self.receiver = receiver
    }

    public func stop() async { await receiver.stop() }

    /// Deploys `function` under `name` (invoked by name or by ARN).
    public func deploy(_ name: String, _ function: @escaping Function) {
        state.withLock { $0.functions[name] = function }
    }

    public func arn(of name: String) -> String { "arn:aws:lambda:\(region):\(accountID):function:\(name)" }

    /// The next `times` well-signed invocations get `error` instead of running.
    public func failNext(_ error: ServiceError, times: Int = 1) {
        state.withLock { $0.failures += Array(repeating: error, count: times) }
    }

    // MARK: the contract

    static let routePrefix = "/2015-03-31/functions/"
    static let routeSuffix = "/invocations"

    func answer(_ request: HTTPReceiver.Request) -> HTTPReceiver.Answer {
        guard request.path.hasPrefix(Self.routePrefix), request.path.hasSuffix(Self.routeSuffix),
            request.path.count > Self.routePrefix.count + Self.routeSuffix.count
        else {
            return refuse(404, "UnknownOperationException", "Unknown operation", why: "path \(request.path)")
        }
        guard request.method == "POST" else { return refuse(405, "MethodNotAllowedException", "Method not allowed", why: "method") }
        if let problem = signatureProblem(request) { return problem }
        let encodedName = String(request.path.dropFirst(Self.routePrefix.count).dropLast(Self.routeSuffix.count))
        let name = functionName(encodedName.removingPercentEncoding ?? encodedName)
        guard let function = state.withLock({ $0.functions[name] }) else {
            return refuse(404, "ResourceNotFoundException", "Function not found: \(arn(of: name))", why: "function \(name)")
        }
        guard (try? JSONSerialization.jsonObject(with: Data(request.body), options: [.fragmentsAllowed])) != nil else {
            return refuse(400, "InvalidRequestContentException", "Could not parse request body into json", why: "payload")
        }
        if let failure = state.withLock({ $0.failures.isEmpty ? nil : $0.failures.removeFirst() }) {
            return error(failure.status, failure.type, failure.message)
        }
        state.withLock { $0.invocations.append(Invocation(function: name, event: request.body, headers: request.headers)) }
        let executed = ["X-Amz-Executed-Version": "$LATEST", "X-Amzn-RequestId": UUID().uuidString.lowercased()]
        switch function(request.body) {
        case .returned(let json):
            return .init(status: 200, body: json, headers: executed)
        case .threw(let type, let message):
            let body = Self.json(["errorType": type, "errorMessage": message, "stackTrace": ["  at handler (index.js:1:1)"]])
            return .init(status: 200, body: body, headers: executed.merging(["X-Amz-Function-Error": "Unhandled"]) { $1 })
        }
    }

    /// `name`, `arn:aws:lambda:region:account:function:name` or `account:function:name`.
    func functionName(_ identifier: String) -> String {
        let parts = identifier.split(separator: ":")
        if let index = parts.firstIndex(of: "function"), index + 1 < parts.count { return String(parts[index + 1]) }
        return identifier
    }

    /// Recomputes the signature from the request as received, as AWS does.
    func signatureProblem(_ request: HTTPReceiver.Request) -> HTTPReceiver.Answer? {
        guard let authorization = request.headers["authorization"], authorization.hasPrefix("AWS4-HMAC-SHA256 ") else {
            return refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token", why: "no SigV4 authorization")
        }
        var fields: [String: String] = [:]
        for part in authorization.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
            let pair = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        let scope = (fields["Credential"] ?? "").split(separator: "/").map(String.init)
        guard scope.count == 5, scope[0] == credentials.accessKeyId else {
            return refuse(
                403, "UnrecognizedClientException", "The security token included in the request is invalid.", why: "access key")
        }
        guard scope[2] == region, scope[3] == "lambda", scope[4] == "aws4_request" else {
            return refuse(
                403, "InvalidSignatureException", "Credential should be scoped to a valid region and service.",
                why: "scope \(scope[2])/\(scope[3])")
        }
        let signedNames = (fields["SignedHeaders"] ?? "").split(separator: ";").map(String.init)
        guard signedNames.contains("host"), signedNames.contains("x-amz-date"), let amzDate = request.headers["x-amz-date"],
            amzDate.hasPrefix(scope[1])
        else {
            return refuse(403, "IncompleteSignatureException", "host and x-amz-date must be signed", why: "signed headers")
        }
        guard let date = Self.parseAmzDate(amzDate), abs(date.timeIntervalSinceNow) < 300 else {
            return refuse(403, "InvalidSignatureException", "Signature expired: \(amzDate)", why: "date")
        }
        if credentials.sessionToken != nil, request.headers["x-amz-security-token"] != credentials.sessionToken {
            return refuse(403, "UnrecognizedClientException", "The security token included in the request is invalid.", why: "token")
        }
        let signer = SigV4(credentials: credentials, region: region, service: "lambda")
        let signed = SigV4.Request(
            method: request.method, path: request.path, query: request.query.map { ($0.key, $0.value) },
            headers: signedNames.map { ($0, request.headers[$0] ?? "") }, body: request.body)
        guard signer.authorization(for: signed, amzDate: amzDate) == authorization else {
            return refuse(
                403, "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
                why: "signature")
        }
        return nil
    }

    static func parseAmzDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: text)
    }

    // MARK: helpers

    func refuse(_ status: Int, _ type: String, _ message: String, why: String) -> HTTPReceiver.Answer {
        state.withLock { $0.refusals.append(why) }
        return error(status, type, message)
    }

    func error(_ status: Int, _ type: String, _ message: String) -> HTTPReceiver.Answer {
        .init(
            status: status, body: Self.json(["Type": "User", "message": message]),
            headers: ["X-Amzn-ErrorType": "\(type):http://internal.amazon.com/coral/com.amazonaws.awsgatewaylambda/"])
    }

    static func json(_ fields: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
