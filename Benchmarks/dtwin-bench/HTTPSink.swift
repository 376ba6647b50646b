import DTwinTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The benchmark's stand-in for API Gateway: a plain SwiftNIO HTTP/1.1 server on one event loop
/// of its own that answers every request `200 {}` and hands each request's query to a closure.
///
/// Why not the tests' `HTTPReceiver`: API Gateway runs on other machines, but this stand-in
/// shares the benchmark's two cores with the bridge. Hummingbird's router and per-request
/// tasks cost about as much CPU per request as the bridge itself, so with it the benchmark
/// measured the receiver as much as the bridge. This server does the least HTTP/1.1 allows.
final class HTTPSink: Sendable {
    let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let requests: RequestCounter

    var requestCount: Int { requests.value }
    var url: String { "http://127.0.0.1:\(port)/digitaltwin" }

    private init(port: Int, group: MultiThreadedEventLoopGroup, channel: any Channel, requests: RequestCounter) {
        self.port = port
        self.group = group
        self.channel = channel
        self.requests = requests
    }

    static func start(onRequest: @escaping @Sendable (Substring) -> Void) async throws -> HTTPSink {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let requests = RequestCounter()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(
                        SinkHandler(onRequest: { query in
                            requests.add()
                            onRequest(query)
                        }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HTTPSink(port: channel.localAddress?.port ?? 0, group: group, channel: channel, requests: requests)
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

private final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func add() { count.add(1, ordering: .relaxed) }
}

/// Answers each request once its end arrives; flushes once per read burst, not per answer.
private final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "2")])
    private let onRequest: @Sendable (Substring) -> Void
    private let answer = ByteBuffer(string: "{}")
    private var keepAlive = true

    init(onRequest: @escaping @Sendable (Substring) -> Void) {
        self.onRequest = onRequest
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            let query = head.uri.firstIndex(of: "?").map { head.uri[head.uri.index(after: $0)...] } ?? ""
            onRequest(query)
        case .body:
            break
        case .end:
            var head = HTTPResponseHead(version: .http1_1, status: .ok, headers: Self.headers)
            if !keepAlive { head.headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(answer))), promise: nil)
            if keepAlive {
                context.write(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// One open dashboard, as far as the bridge can tell: a live stream (`GET /api/events`) read
/// as fast as the bridge sends, on a thread of its own, counting the pushes.
final class DashboardStream: Sendable {
    private let connection: RawConnection
    private let count = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    init(port: Int, token: String) throws {
        connection = try RawConnection(port: port)
        connection.send("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream\r\n\r\n")
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let (text, closed) = connection.read(timeout: .milliseconds(500))
                count.add(text.components(separatedBy: "data: ").count - 1, ordering: .relaxed)
                if closed { break }
            }
        }
        thread.start()
    }

    /// Pushes received so far.
    var pushes: Int { count.load(ordering: .relaxed) }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
