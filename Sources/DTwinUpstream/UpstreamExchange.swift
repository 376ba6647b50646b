import AsyncHTTPClient
import DTwinContract
import NIOCore

/// One HTTP request to the `lambda` upstream (AWS's Invoke API) and its whole answer, through
/// AsyncHTTPClient: the answer is read in one piece on the connection's event loop. (`apigw`,
/// every message's hot path, has connections of its own: ``KeepAliveHTTPClient``.)
struct UpstreamExchange: Sendable {
    /// Answers larger than this are refused (dead-lettered): upstream answers are small.
    static let maxAnswerBytes = 1 << 20

    let client: HTTPClient
    let executors: [EventLoopTaskExecutor]
    let timeout: Duration

    init(client: HTTPClient, timeout: Duration) {
        self.client = client
        self.timeout = timeout
        self.executors = EventLoopTaskExecutor.forEachLoop(of: client.eventLoopGroup)
    }

    /// The answer, or the outcome that replaces it when there is none (`target` names the
    /// upstream in the reason, without anything secret).
    func send(_ request: HTTPClient.Request, target: String) async -> Result<HTTPClient.Response, Failure> {
        do {
            // The future-based API reads the whole answer on the connection's event loop and
            // resumes this task once; the streaming API costs extra thread hops per request,
            // and this is the hot path of every delivery.
            let accumulator = ResponseAccumulator(request: request, maxBodySize: Self.maxAnswerBytes)
            // A worker running on one of the client's event loops keeps the whole exchange there.
            let loop = executors.first { $0.eventLoop.inEventLoop }?.eventLoop
            return .success(
                try await client.execute(
                    request: request, delegate: accumulator, eventLoop: loop.map { .delegate(on: $0) } ?? .indifferent,
                    deadline: .now() + .nanoseconds(timeout.nanoseconds)
                ).futureResult.get())
        } catch is ResponseAccumulator.ResponseTooBigError {
            // Not a sane answer; retrying would only fetch it again.
            return .failure(Failure(outcome: .reject(reason: "the upstream's answer is over \(Self.maxAnswerBytes) bytes")))
        } catch {
            return .failure(Failure(outcome: .retry(reason: "\(request.method) \(target) failed: \(Self.describe(error))")))
        }
    }

    /// A request that got no usable answer, as the delivery outcome it leads to.
    struct Failure: Error {
        let outcome: DeliveryOutcome
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
