import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization

/// A real HTTP server on 127.0.0.1 with a random port that records every request and answers
/// as the test says: the stand-in for API Gateway (and, in benchmarks, a fast sink).
public final class HTTPReceiver: Sendable {
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Query parameters as Hummingbird decodes them (independently of dtwin's encoder).
        public var query: [String: String]
        /// Header fields by lower-cased name.
        public var headers: [String: String]
        public var body: [UInt8]
    }

    public struct Answer: Sendable {
        public var status: Int
        public var body: String
        public var delay: Duration?
        /// Extra header fields (`Content-Type` is `application/json` unless set here).
        public var headers: [String: String]

        public init(status: Int = 200, body: String = "", delay: Duration? = nil, headers: [String: String] = [:]) {
            self.status = status
            self.body = body
            self.delay = delay
            self.headers = headers
        }
    }

    public typealias Handler = @Sendable (Request) async -> Answer

    /// What the server's handler and the receiver share.
    final class Storage: Sendable {
        let recorded = Mutex<[Request]>([])
        let count = Atomic<Int>(0)
    }

    public let port: Int
    private let storage: Storage
    private let task: Task<Void, any Error>

    public var url: String { "http://127.0.0.1:\(port)/digitaltwin" }
    public var requests: [Request] { storage.recorded.withLock { $0 } }
    public var requestCount: Int { storage.count.load(ordering: .relaxed) }

    /// Starts the server on `port` (0: any free port); it records every request.
    public static func start(
        port requestedPort: Int = 0, handler: @escaping Handler = { _ in Answer() }
    ) async throws -> HTTPReceiver {
        let storage = Storage()
        let router = Router()
        let respond: @Sendable (Hummingbird.Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: 16 << 20)
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            // HTTP/1's Host header arrives as the request's authority; signatures cover it.
            if let authority = request.head.authority { headers["host"] = authority }
            let recordedRequest = Request(
                method: request.method.rawValue, path: request.uri.path, query: query, headers: headers,
                body: Array(body.readableBytesView))
            storage.count.add(1, ordering: .relaxed)
            storage.recorded.withLock { $0.append(recordedRequest) }
            let answer = await handler(recordedRequest)
            if let delay = answer.delay { try? await Task.sleep(for: delay) }
            var fields: HTTPFields = [.contentType: "application/json"]
            for (name, value) in answer.headers {
                if let field = HTTPField.Name(name) { fields[field] = value }
            }
            return Response(
                status: .init(code: answer.status),
                headers: fields,
                body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        // `**` does not match the root; DynamoDB's API lives there.
        for path in ["/", "**"] {
            router.get(RouterPath(path), use: respond)
            router.post(RouterPath(path), use: respond)
        }
        return try await run(router: router, port: requestedPort, storage: storage)
    }

    /// Starts a receiver that answers through `server`, an object built around it (a
    /// contract stand-in such as ``TwilioAPIServer``): it can only be built once the receiver
    /// runs, and until then a request is answered 503.
    public static func start<Server: Sendable>(
        serving makeServer: (HTTPReceiver) -> Server, answer: @escaping @Sendable (Server, Request) -> Answer
    ) async throws -> Server {
        let box = Mutex<Server?>(nil)
        let receiver = try await start { request in
            guard let server = box.withLock({ $0 }) else { return Answer(status: 503) }
            return answer(server, request)
        }
        let server = makeServer(receiver)
        box.withLock { $0 = server }
        return server
    }

    private init(port: Int, storage: Storage, task: Task<Void, any Error>) {
        self.port = port
        self.storage = storage
        self.task = task
    }

    /// Waits (bounded) until at least `count` requests have arrived.
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { requestCount >= count }
    }

    private static func run(router: Router<BasicRequestContext>, port: Int, storage: Storage) async throws -> HTTPReceiver {
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "http-receiver")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), backlog: 1024),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger)
        // A server that fails to start (the port taken meanwhile) ends the stream too, so that
        // the wait below ends with its error instead of lasting for ever.
        let failure = Mutex<(any Error)?>(nil)
        let task = Task {
            defer { portContinuation.finish() }
            do { try await app.run() } catch {
                failure.withLock { $0 = error }
                throw error
            }
        }
        var iterator = portStream.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else {
            task.cancel()
            let cause = failure.withLock { $0 }.map { ": \($0)" } ?? ""
            throw TestSupportError("the HTTP receiver did not start on 127.0.0.1:\(port)\(cause)")
        }
        return HTTPReceiver(port: bound, storage: storage, task: task)
    }

    public func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}
