import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// HTTP/1.0 spoken as HTTP/1.0: the answer carries the request's version, and a request that did
/// not ask to keep the connection (HTTP/1.0 without `Connection: keep-alive`, or any request
/// with `Connection: close`) is answered with `Connection: close` and the connection closed;
/// an HTTP/1.0 request that asked to keep it is answered `Connection: keep-alive`.
/// Hummingbird turns requests into version-free HTTP types before a handler of ours sees them,
/// so this handler places ``VersionKeeper`` before that conversion when it joins a connection.
final class HTTP10Support: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        if let codec = try? pipeline.handler(type: HTTP1ToHTTPServerCodec.self) {
            try? pipeline.addHandler(VersionKeeper(), position: .before(codec))
        }
    }
}

/// Sees each request head as HTTP/1 wrote it and answers in kind.
final class VersionKeeper: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// The version and keep-alive wish of each request not yet answered, oldest first.
    private var pending: [(version: HTTPVersion, keepAlive: Bool)] = []
    private var closeAfterResponse = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { pending.append((head.version, head.isKeepAlive)) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where !pending.isEmpty && head.status.code >= 200:  // a 100 Continue answers nothing yet
            let request = pending.removeFirst()
            let http10 = request.version.major == 1 && request.version.minor == 0
            if http10 { head.version = request.version }
            if !request.keepAlive || head.headers[canonicalForm: "connection"].contains("close") {
                head.headers.replaceOrAdd(name: "Connection", value: "close")
                closeAfterResponse = true
            } else if http10 {
                // HTTP/1.0 keeps a connection only when the answer says so too.
                head.headers.replaceOrAdd(name: "Connection", value: "keep-alive")
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end where closeAfterResponse:
            context.writeAndFlush(data).whenComplete { _ in context.close(promise: nil) }
            promise?.succeed()
        default:
            context.write(data, promise: promise)
        }
    }
}
