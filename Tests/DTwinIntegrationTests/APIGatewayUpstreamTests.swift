import AsyncHTTPClient
import DTwinContract
import DTwinTestSupport
import DTwinUpstream
import Logging
import NIOCore
import Testing

/// The `apigw` upstream's delivery workers run on the HTTP client's own event loops
/// (``EventLoopTaskExecutor``), and deliveries made from there work like any other.
@Suite struct APIGatewayUpstreamTests {
    @Test func workersRunOnTheClientsEventLoopsAndDeliverFromThere() async throws {
        let gateway = try await HTTPReceiver.start { _ in .init(body: #"{"reply": "ACK"}"#) }
        let client = HTTPClient.shared
        let upstream = try APIGatewayUpstream(url: gateway.url, post: false, timeout: .seconds(5), client: client)
        let executors = upstream.workerExecutors.compactMap { $0 as? EventLoopTaskExecutor }
        #expect(!executors.isEmpty)
        #expect(executors.count == upstream.workerExecutors.count)
        for (index, executor) in executors.enumerated() {
            let message = DeviceMessage(
                id: MessageID(rawValue: "id-\(index)"), device: DeviceName("uno\(index)")!, topic: "dtwin/uno\(index)/up",
                payload: Array("sim-uno\(index) data \(index)".utf8), receivedAtMillis: 1_700_000_000_000)
            let (onLoop, outcome) = await Task(executorPreference: executor) {
                let onLoop = executor.eventLoop.inEventLoop
                let outcome = await upstream.deliver(IoTEvent(message: message), logger: Logger(label: "test"))
                // The worker resumes on its loop after the answer, ready for the next message.
                return (onLoop && executor.eventLoop.inEventLoop, outcome)
            }.value
            #expect(onLoop)
            #expect(outcome == .delivered(reply: "ACK", note: nil))
        }
        #expect(gateway.requests.map { $0.query["MessageId"] } == executors.indices.map { "id-\($0)" })
        await gateway.stop()
    }

    @Test(arguments: [
        ("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/bridge", "eu-west-1"),
        ("https://a1b2c3d4e5.execute-api.us-gov-west-1.amazonaws.com/prod/bridge", "us-gov-west-1"),
        ("https://iot.example.org/twin/bridge", nil),
        ("http://127.0.0.1:8080/prod/bridge", nil),
    ])
    func theRegionToSignForIsReadFromTheInvokeURL(_ url: String, _ region: String?) {
        #expect(APIGatewayUpstream.region(ofInvokeURL: url) == region)
    }

    /// API Gateway's own refusals say nothing about the message: they are retried (and so kept),
    /// while the function's own 4xx is a dead letter and its 5xx a retry, as before.
    @Test(
        arguments: [
            (403, "InvalidSignatureException", true), (403, "MissingAuthenticationTokenException", true),
            (403, "UnrecognizedClientException:http://internal.amazon.com/coral/", true), (403, "AccessDeniedException", true),
            (403, nil, false), (400, nil, false), (413, "RequestTooLargeException", false),
        ] as [(Int, String?, Bool)])
    func gatewayRefusalsAreRetried(_ status: Int, _ errorType: String?, _ retried: Bool) {
        let outcome = APIGatewayUpstream.classify(status: status, errorType: errorType, body: Array(#"{"message":"no"}"#.utf8))
        if case .retry(let reason) = outcome {
            #expect(retried, "\(reason)")
            #expect(reason.contains("check upstream.url, upstream.auth"))
        } else {
            #expect(!retried, "\(outcome)")
        }
        if case .retry = APIGatewayUpstream.classify(status: 503, errorType: nil, body: []) {
        } else {
            Issue.record("a 503 is not retried")
        }
    }
}
