import AsyncHTTPClient
import DTwinAWS
import DTwinApp
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import DTwinUpstream
import Foundation
import Logging
import Testing

/// `upstream.mode: lambda` against a local Lambda Invoke API that checks the SigV4 signature,
/// the route and the payload the way Lambda's front door does (``LambdaAPIServer``).
@Suite struct LambdaUpstreamTests {
    static let credentials = AWSCredentials(accessKeyId: "AKIDLAMBDA", secretAccessKey: "lambda-secret")
    static let environment = ["AWS_ACCESS_KEY_ID": "AKIDLAMBDA", "AWS_SECRET_ACCESS_KEY": "lambda-secret", "HOME": "/nonexistent"]
    static let logger = Logger(label: "lambda-test")

    /// The seed's function in miniature: reads the proxy event, answers for the device.
    static func seedFunction(_ event: [UInt8]) -> LambdaAPIServer.Result {
        if let test = try? JSONDecoder().decode(ConsoleTestEvent.self, from: Data(event)) {
            return .returned(#"{"statusCode": 200, "body": "{\"testuser\": \"\#(test.testuser)\"}"}"#)
        }
        guard let proxy = try? JSONDecoder().decode(APIGatewayProxyEvent.self, from: Data(event)),
            let iot = IoTEvent(proxyEvent: proxy), let device = iot[IoTEvent.Name.simUniqueName]
        else { return .threw(type: "KeyError", message: "'queryStringParameters'") }
        switch device {
        case "uno1": return .returned(#"{"statusCode": 200, "body": "{\"reply\": \"LIG\"}"}"#)
        case "uno2": return .returned(#"{"payload": {"reply": "ACK"}}"#)
        case "uno3": return .threw(type: "ValueError", message: "could not convert string to float: 'abc'")
        default: return .returned(#"{"statusCode": 200, "body": "{}"}"#)
        }
    }

    func bridge(on lambda: LambdaAPIServer, function: String) async throws -> BridgeHarness {
        try await BridgeHarness(environment: Self.environment) {
            $0.upstream.mode = .lambda
            $0.upstream.function = function
            $0.upstream.endpoint = lambda.endpoint
        }
    }

    @Test func theBridgeInvokesTheFunctionWithTheProxyEventAndPublishesItsReply() async throws {
        let lambda = try await LambdaAPIServer.start(credentials: Self.credentials, region: "eu-central-1")
        lambda.deploy("twin-ingest", Self.seedFunction)
        // By ARN: its colons are percent-encoded in the path and the region comes from it.
        let harness = try await bridge(on: lambda, function: lambda.arn(of: "twin-ingest"))
        try await harness.publish("dtwin/uno1/up", "sim-uno1 data 512")
        try await harness.publish("dtwin/uno2/up", "sim-uno2 data 77")
        #expect(
            await harness.watcher.waitFor { messages in
                messages.contains { $0.topic == "dtwin/uno1/down" } && messages.contains { $0.topic == "dtwin/uno2/down" }
            })
        #expect(harness.payloads(on: "dtwin/uno1/down") == ["LIG"], "the proxy response's body carries the reply")
        #expect(harness.payloads(on: "dtwin/uno2/down") == ["ACK"], "the seed's payload carries the reply")
        #expect(lambda.refusals.isEmpty, "\(lambda.refusals)")

        let invocation = try #require(lambda.invocations.first { $0.event.count > 0 && String(decoding: $0.event, as: UTF8.self).contains("uno1") })
        #expect(invocation.function == "twin-ingest")
        #expect(invocation.headers["x-amz-invocation-type"] == "RequestResponse")
        let proxy = try JSONDecoder().decode(APIGatewayProxyEvent.self, from: Data(invocation.event))
        let query = try #require(proxy.queryStringParameters)
        #expect(query["SimUniqueName"] == "uno1")
        #expect(query["Payload"].flatMap { Data(base64Encoded: $0) } == Data("sim-uno1 data 512".utf8))
        #expect(query["Topic"] == "dtwin/uno1/up")
        #expect(query["Direction"] == "from_sim" && query["Status"] == "received" && query["Source"] == "mqtt")
        #expect(harness.deadLetters.isEmpty)
        await harness.stop()
        await lambda.stop()
    }

    @Test func aFunctionErrorIsADeadLetterWithTheFunctionsOwnError() async throws {
        let lambda = try await LambdaAPIServer.start(credentials: Self.credentials)
        lambda.deploy("twin-ingest", Self.seedFunction)
        let harness = try await bridge(on: lambda, function: "twin-ingest")
        try await harness.publish("dtwin/uno3/up", "sim-uno3 data abc")
        #expect(await harness.watcher.waitFor { $0.contains { $0.topic == "dtwin/bridge/deadletter" } })
        let letter = try #require(harness.deadLetters.first)
        #expect(letter.device == "uno3")
        #expect(letter.reason.contains("Unhandled"), "\(letter.reason)")
        #expect(letter.reason.contains("ValueError: could not convert string to float: 'abc'"), "\(letter.reason)")
        #expect(letter.payload == Data("sim-uno3 data abc".utf8).base64EncodedString())
        #expect(lambda.invocations.count == 1, "a function that threw is not run again")
        #expect(harness.payloads(on: "dtwin/uno3/down").isEmpty)
        await harness.stop()
        await lambda.stop()
    }

    @Test func throttlingAndServiceErrorsAreRetriedUntilTheFunctionRuns() async throws {
        let lambda = try await LambdaAPIServer.start(credentials: Self.credentials)
        lambda.deploy("twin-ingest", Self.seedFunction)
        lambda.failNext(.throttled, times: 2)
        lambda.failNext(.serviceException)
        let harness = try await bridge(on: lambda, function: "twin-ingest")
        try await harness.publish("dtwin/uno1/up", "sim-uno1 data 1")
        #expect(await harness.watcher.waitFor { $0.contains { $0.topic == "dtwin/uno1/down" } })
        #expect(lambda.requestCount == 4, "three refusals, then the invocation")
        #expect(lambda.invocations.count == 1)
        #expect(harness.deadLetters.isEmpty)
        await harness.stop()
        await lambda.stop()
    }

    @Test func lambdasOwnRefusalsAreNamedAndClassified() async throws {
        let lambda = try await LambdaAPIServer.start(credentials: Self.credentials)
        lambda.deploy("twin-ingest", Self.seedFunction)
        let client = HTTPClient.shared
        func upstream(_ function: String, _ credentials: AWSCredentials, region: String = "us-west-2") throws -> LambdaUpstream {
            try LambdaUpstream(
                function: function, endpoint: lambda.endpoint, region: region, credentials: credentials, timeout: .seconds(5),
                client: client)
        }
        let message = DeviceMessage(
            id: MessageID(rawValue: "m-1"), device: DeviceName("uno9")!, topic: "dtwin/uno9/up", payload: Array("sim-uno9 data 5".utf8),
            receivedAtMillis: 1_700_000_000_000)
        let event = IoTEvent(message: message)

        let good = try upstream("twin-ingest", Self.credentials)
        #expect(await good.deliver(event, logger: Self.logger) == .delivered(reply: nil, note: nil))
        #expect(await good.deliverTestEvent(.seed, logger: Self.logger) == .delivered(reply: nil, note: nil))
        let testEvent = try #require(lambda.invocations.last)
        #expect(try JSONDecoder().decode(ConsoleTestEvent.self, from: Data(testEvent.event)) == .seed)

        let missing = await try upstream("no-such-function", Self.credentials).deliver(event, logger: Self.logger)
        #expect(missing.rejectReason?.contains("404 ResourceNotFoundException: Function not found") == true, "\(missing)")

        let wrongSecret = AWSCredentials(accessKeyId: "AKIDLAMBDA", secretAccessKey: "not-the-secret")
        let forged = await try upstream("twin-ingest", wrongSecret).deliver(event, logger: Self.logger)
        let forgedReason = forged.retryReason ?? ""
        #expect(forgedReason.contains("InvalidSignatureException") && forgedReason.contains("check the AWS credentials"), "\(forged)")
        #expect(!forgedReason.contains("not-the-secret"))

        let stranger = AWSCredentials(accessKeyId: "AKIDSTRANGER", secretAccessKey: "lambda-secret")
        let unknown = await try upstream("twin-ingest", stranger).deliver(event, logger: Self.logger)
        #expect(unknown.retryReason?.contains("UnrecognizedClientException") == true, "\(unknown)")

        let otherRegion = await try upstream("twin-ingest", Self.credentials, region: "ap-south-1").deliver(event, logger: Self.logger)
        #expect(otherRegion != .delivered(reply: nil, note: nil))
        #expect(lambda.refusals == ["function no-such-function", "signature", "access key", "scope ap-south-1/lambda"])
        #expect(lambda.invocations.count == 2, "only the well-signed requests to a real function ran it")
        await lambda.stop()
    }

    @Test func temporaryCredentialsSendTheirSessionToken() async throws {
        let temporary = AWSCredentials(accessKeyId: "ASIATEMP", secretAccessKey: "temp-secret", sessionToken: "token-123")
        let lambda = try await LambdaAPIServer.start(credentials: temporary)
        lambda.deploy("twin-ingest", Self.seedFunction)
        let client = HTTPClient.shared
        let upstream = try LambdaUpstream(
            function: "twin-ingest", endpoint: lambda.endpoint, region: "us-west-2", credentials: temporary, timeout: .seconds(5),
            client: client)
        #expect(await upstream.deliverTestEvent(.seed, logger: Self.logger) == .delivered(reply: nil, note: nil))
        #expect(lambda.invocations.first?.headers["x-amz-security-token"] == "token-123")
        #expect(lambda.refusals.isEmpty)
        await lambda.stop()
    }

    @Test func configurationProblemsNameTheSetting() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-lambda-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = DTwinConfiguration()
        configuration.upstream.mode = .lambda
        configuration.spool.path = directory.path
        configuration.store.path = directory.appendingPathComponent("twin.sqlite").path
        #expect(throws: ConfigurationError.self) {
            try BridgeApplication(configuration: configuration, environment: Self.environment, logger: Self.logger, handleSignals: false)
        }
        do {
            _ = try BridgeApplication(configuration: configuration, environment: Self.environment, logger: Self.logger, handleSignals: false)
        } catch {
            #expect("\(error)".contains("upstream.function is empty"), "\(error)")
        }
        configuration.upstream.function = "twin-ingest"
        do {
            _ = try BridgeApplication(configuration: configuration, environment: ["HOME": "/nonexistent"], logger: Self.logger, handleSignals: false)
            Issue.record("no credentials must be refused")
        } catch {
            #expect("\(error)".contains("no AWS credentials"), "\(error)")
        }
    }
}

/// The Invoke API's answers as outcomes, and the region a function ARN names. Pure.
@Suite struct LambdaAnswerTests {
    func classify(_ status: Int, functionError: String? = nil, errorType: String? = nil, _ body: String) -> DeliveryOutcome {
        LambdaUpstream.classify(status: status, functionError: functionError, errorType: errorType, body: Array(body.utf8))
    }

    @Test func functionResults() {
        #expect(classify(200, #"{"statusCode": 200, "body": "{\"reply\": \"LIG\"}"}"#) == .delivered(reply: "LIG", note: nil))
        #expect(classify(200, #"{"payload": {"reply": "ACK"}}"#) == .delivered(reply: "ACK", note: nil))
        #expect(classify(200, "null") == .delivered(reply: nil, note: nil))
        // The function's own proxy status decides, as API Gateway would.
        #expect(classify(200, #"{"statusCode": 503, "body": "busy"}"#) == .retry(reason: "upstream answered 503: busy"))
        #expect(classify(200, #"{"statusCode": 400, "body": "bad"}"#) == .reject(reason: "upstream answered 400: bad"))
        #expect(
            classify(200, functionError: "Handled", #"{"errorType": "KeyError", "errorMessage": "'Payload'"}"#)
                == .reject(reason: "the Lambda function failed (Handled): KeyError: 'Payload'"))
        // A function that ran out of time or memory answers without errorType.
        #expect(
            classify(200, functionError: "Unhandled", "Task timed out after 3.00 seconds")
                == .reject(reason: "the Lambda function failed (Unhandled): Unhandled: Task timed out after 3.00 seconds"))
    }

    @Test func serviceErrors() {
        let conflict = classify(
            409, errorType: "ResourceConflictException:http://internal.amazon.com/",
            #"{"message": "The operation cannot be performed at this time."}"#)
        #expect(conflict == .retry(reason: "Lambda answered 409 ResourceConflictException: The operation cannot be performed at this time."))
        #expect(classify(429, errorType: "TooManyRequestsException", "{}") == .retry(reason: "Lambda answered 429 TooManyRequestsException"))
        #expect(classify(502, "") == .retry(reason: "Lambda answered 502 HTTP 502"))
        #expect(
            classify(413, errorType: "RequestTooLargeException", #"{"message": "Request must be smaller than 6291456 bytes"}"#)
                == .reject(reason: "Lambda answered 413 RequestTooLargeException: Request must be smaller than 6291456 bytes"))
        let expired = classify(403, errorType: "ExpiredTokenException", #"{"message": "The security token included in the request is expired"}"#)
        #expect(expired.retryReason?.hasSuffix("(check the AWS credentials, region and clock)") == true, "\(expired)")
    }

    @Test func theRegionComesFromAnARN() {
        #expect(LambdaUpstream.region(of: "arn:aws:lambda:eu-west-1:123456789012:function:twin", fallback: "us-west-2") == "eu-west-1")
        #expect(LambdaUpstream.region(of: "twin", fallback: "us-west-2") == "us-west-2")
        #expect(LambdaUpstream.region(of: "123456789012:function:twin", fallback: "us-east-1") == "us-east-1")
    }
}

extension DeliveryOutcome {
    fileprivate var retryReason: String? {
        if case .retry(let reason) = self { reason } else { nil }
    }

    fileprivate var rejectReason: String? {
        if case .reject(let reason) = self { reason } else { nil }
    }
}
