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
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let upstream = APIGatewayUpstream(url: gateway.url, post: false, timeout: .seconds(5), client: client)
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
        try await client.shutdown()
        await gateway.stop()
    }
}
