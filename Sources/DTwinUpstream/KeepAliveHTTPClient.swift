import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// HTTP/1.1 requests to one origin (the upstream's scheme, host and port) over keep-alive
/// connections, each event loop with idle connections of its own.
///
/// Why not AsyncHTTPClient, which the bridge uses everywhere else: this is the hot path of every
/// delivery, and measured on the project's machine one exchange through AsyncHTTPClient's
/// connection pool and request state machines cost 85–100 µs of CPU against 40–51 µs for the
/// same exchange written straight on SwiftNIO's HTTP codec (README, Benchmark). The upstream
/// needs little of what the general client offers: one origin, no redirects (they are reported,
/// never followed), no proxies, no streaming, answers of at most ``UpstreamExchange/maxAnswerBytes``.
///
/// A request runs on the caller's event loop when the caller is on one of the group's loops
/// (the delivery workers are: ``EventLoopTaskExecutor``), so connection, request and answer
/// never cross threads. A connection goes back to its loop's idle list after an answer that
/// allows it (HTTP/1.1 without `Connection: close`); anything else closes it.
final class KeepAliveHTTPClient: Sendable {
    /// Where every request goes.
    struct Origin: Sendable, Equatable {
        var tls: Bool
        var host: String
        var port: Int

        /// The `Host` header: the port only when it is not the scheme's own.
        var hostHeader: String {
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return port == (tls ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
        }
    }

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
        /// Whether the server keeps the connection open after this answer.
        var keepAlive: Bool
    }

    enum Failure: Error, CustomStringConvertible, Equatable {
        case timeout
        case closed
        case tooBig(limit: Int)
        case connect(String)
        case other(String)

        var description: String {
            switch self {
            case .timeout: "no answer within the timeout"
            case .closed: "the server closed the connection"
            case .tooBig(let limit): "the answer is over \(limit) bytes"
            case .connect(let reason): "cannot connect: \(reason)"
            case .other(let reason): reason
            }
        }
    }

    let origin: Origin
    let group: any EventLoopGroup
    /// ``Origin/hostHeader``, worked out once (every request sends it).
    private let hostHeader: String
    private let pools: [ObjectIdentifier: LoopPool]

    /// `tls`: how to check the server (`nil`: the system's trust roots).
    init(origin: Origin, group: any EventLoopGroup, connectTimeout: TimeAmount, tls: TLSConfiguration? = nil) throws {
        self.origin = origin
        self.group = group
        self.hostHeader = origin.hostHeader
        let context = origin.tls ? try NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil
        var pools: [ObjectIdentifier: LoopPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = LoopPool(loop: loop, origin: origin, sslContext: context, connectTimeout: connectTimeout)
        }
        self.pools = pools
    }

    /// Sends `head` (and `body`) and reads the whole answer, failing at `deadline` (give or
    /// take ``LoopPool/sweepPeriod``) or when the body passes `maxBodyBytes`.
    func execute(head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline, maxBodyBytes: Int) async throws(Failure) -> Response {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Response, Failure>, Never>) in
            execute(head: head, body: body, deadline: deadline, maxBodyBytes: maxBodyBytes) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// As above, calling `completion` exactly once, on the event loop that ran the exchange.
    ///
    /// Why a callback and not an `EventLoopFuture`: the futures of an exchange (the answer's and
    /// the one that put the connection back) cost about 8,000 instructions a message in
    /// allocations and generic metadata lookups, measured with callgrind (README, Benchmark).
    func execute(
        head: HTTPRequestHead, body: ByteBuffer?, deadline: NIODeadline, maxBodyBytes: Int,
        completion: @escaping @Sendable (Result<Response, Failure>) -> Void
    ) {
        var head = head
        head.headers.replaceOrAdd(name: "Host", value: hostHeader)
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.readableBytes)") }
        let loop = group.any()
        let pool = pools[ObjectIdentifier(loop)] ?? pools.values.first!
        let exchange = Exchange(head: head, body: body, deadline: deadline, maxBodyBytes: maxBodyBytes)
        if pool.loop.inEventLoop { return pool.execute(exchange, completion: completion) }
        pool.loop.execute { pool.execute(exchange, completion: completion) }
    }

    /// Closes the idle connections (requests in flight finish or fail on their own).
    func close() async {
        for pool in pools.values {
            try? await pool.loop.submit { pool.closeIdle() }.get()
        }
    }

    struct Exchange: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var deadline: NIODeadline
        var maxBodyBytes: Int
    }
}

/// One event loop's connections. Touched only on that loop.
///
/// Deadlines are kept by one sweep per loop, every ``sweepPeriod`` while an answer is awaited,
/// not by a timer per request: scheduling and cancelling a timer for every exchange cost about
/// 4,000 instructions a message (callgrind), and an upstream timeout is seconds long.
private final class LoopPool: @unchecked Sendable {
    typealias Completion = @Sendable (Result<KeepAliveHTTPClient.Response, KeepAliveHTTPClient.Failure>) -> Void

    /// A connection and the handler that reads its answers. Sendable only to pass through its
    /// own loop's futures: it is used on that loop alone, like the pool.
    struct Connection: @unchecked Sendable {
        let channel: any Channel
        let answers: AnswerHandler
    }

    static let sweepPeriod = TimeAmount.milliseconds(50)

    let loop: any EventLoop
    let origin: KeepAliveHTTPClient.Origin
    let sslContext: NIOSSLContext?
    let connectTimeout: TimeAmount
    private var idle: [Connection] = []
    /// Connections with an answer awaited, for the sweep.
    private var busy: [Connection] = []
    private var sweep: RepeatedTask?

    init(loop: any EventLoop, origin: KeepAliveHTTPClient.Origin, sslContext: NIOSSLContext?, connectTimeout: TimeAmount) {
        self.loop = loop
        self.origin = origin
        self.sslContext = sslContext
        self.connectTimeout = connectTimeout
    }

    func execute(_ exchange: KeepAliveHTTPClient.Exchange, completion: @escaping Completion) {
        loop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.channel.isActive { return send(exchange, on: connection, completion: completion) }
        }
        let timeLeft = exchange.deadline - .now()
        connect(timeout: min(connectTimeout, timeLeft)).whenComplete { result in
            switch result {
            case .success(let connection): self.send(exchange, on: connection, completion: completion)
            case .failure(let error): completion(.failure(.connect("\(error)")))
            }
        }
    }

    func closeIdle() {
        for connection in idle { connection.channel.close(promise: nil) }
        idle.removeAll()
    }

    private func connect(timeout: TimeAmount) -> EventLoopFuture<Connection> {
        let origin = origin
        let sslContext = sslContext
        return ClientBootstrap(group: loop)
            .connectTimeout(max(timeout, .milliseconds(1)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        // SNI and the certificate's name: a host name, never an address.
                        let name = (try? SocketAddress(ipAddress: origin.host, port: 0)) == nil ? origin.host : nil
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: name))
                    }
                    // No outbound validation: every request head is built here, its target from
                    // the configured URL's parsed path and FormEncoding's output (unreserved
                    // characters and %XX only), its fields constant or SigV4's. Validating the
                    // target again, byte by byte, was 4% of the bridge's instructions per message.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(AnswerHandler())
                }
            }
            .connect(host: origin.host, port: origin.port)
            .flatMapThrowing { channel in
                Connection(channel: channel, answers: try channel.pipeline.syncOperations.handler(type: AnswerHandler.self))
            }
    }

    private func send(_ exchange: KeepAliveHTTPClient.Exchange, on connection: Connection, completion: @escaping Completion) {
        let channel = connection.channel
        connection.answers.expect(deadline: exchange.deadline, maxBodyBytes: exchange.maxBodyBytes) { result in
            self.finished(connection, keep: (try? result.get())?.keepAlive ?? false)
            completion(result)
        }
        busy.append(connection)
        if sweep == nil {
            sweep = loop.scheduleRepeatedTask(initialDelay: Self.sweepPeriod, delay: Self.sweepPeriod) { task in self.sweepDeadlines(task) }
        }
        channel.write(HTTPClientRequestPart.head(exchange.head), promise: nil)
        if let body = exchange.body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    /// An answer came (or failed): the connection is idle again if it may be used again.
    private func finished(_ connection: Connection, keep: Bool) {
        if let index = busy.firstIndex(where: { $0.answers === connection.answers }) { busy.remove(at: index) }
        if keep && connection.channel.isActive {
            idle.append(connection)
        } else {
            connection.channel.close(promise: nil)
        }
    }

    /// Fails the answers whose deadline has passed; stops while nothing is awaited.
    private func sweepDeadlines(_ task: RepeatedTask) {
        let now = NIODeadline.now()
        for connection in busy where connection.answers.deadline.map({ $0 <= now }) ?? false {
            connection.answers.fail(.timeout)
        }
        if busy.isEmpty {
            task.cancel()
            sweep = nil
        }
    }
}

/// Reads one answer at a time and hands it to the completion it is given; a connection that
/// closes or fails meanwhile fails it.
private final class AnswerHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var completion: LoopPool.Completion?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var maxBodyBytes = 0
    /// When the awaited answer is late (`nil`: none awaited).
    private(set) var deadline: NIODeadline?

    func expect(deadline: NIODeadline, maxBodyBytes: Int, completion: @escaping LoopPool.Completion) {
        self.completion = completion
        self.deadline = deadline
        self.maxBodyBytes = maxBodyBytes
        head = nil
        body = nil
    }

    /// Ends the awaited answer, once.
    private func complete(_ result: Result<KeepAliveHTTPClient.Response, KeepAliveHTTPClient.Failure>) {
        guard let completion else { return }
        self.completion = nil
        deadline = nil
        completion(result)
    }

    func fail(_ failure: KeepAliveHTTPClient.Failure) {
        complete(.failure(failure))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let received):
            head = received
        case .body(var chunk):
            guard completion != nil else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
                fail(.tooBig(limit: maxBodyBytes))
                context.close(promise: nil)
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard completion != nil, let head else { return }
            // HTTP/1.1 keeps the connection unless it says `close`; HTTP/1.0 ends it unless it
            // says `keep-alive`.
            let connection = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
            let keepAlive = head.version.major == 1 && head.version.minor >= 1 ? !connection.contains("close") : connection.contains("keep-alive")
            complete(.success(.init(status: head.status, headers: head.headers, body: body ?? ByteBuffer(), keepAlive: keepAlive)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.other("\(error)"))
        context.close(promise: nil)
    }
}
