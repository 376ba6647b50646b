import AsyncHTTPClient
import DTwinContract
import DTwinTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing

@testable import DTwinUpstream

/// The `apigw` upstream's own connections (``KeepAliveHTTPClient``) against real servers on
/// loopback: HTTPS checked against a CA (the host name included), keep-alive, a server that
/// closes after each answer, an HTTP/1.0 server, one that never answers, and one that is gone.
@Suite struct UpstreamConnectionTests {
    static let logger = Logger(label: "test")

    static func message(_ n: Int) -> IoTEvent {
        IoTEvent(
            message: DeviceMessage(
                id: MessageID(rawValue: "id-\(n)"), device: DeviceName("uno1")!, topic: "dtwin/uno1/up",
                payload: Array("sim-uno1 data \(n)".utf8), receivedAtMillis: 1_700_000_000_000))
    }

    @Test func httpsIsCheckedAgainstTheConfiguredCAAndItsHostName() async throws {
        let pki = try await TestPKI()
        defer { pki.remove() }
        let gateway = try await TLSGateway.start(pki: pki, answer: #"{"reply": "LIG"}"#)
        var trusted = TLSConfiguration.makeClientConfiguration()
        trusted.trustRoots = .file(pki.caPath)
        let upstream = try APIGatewayUpstream(
            url: "https://localhost:\(gateway.port)/prod/iot?stage=a", post: false, timeout: .seconds(5), client: .shared, tls: trusted)
        for n in 0..<5 { #expect(await upstream.deliver(Self.message(n), logger: Self.logger) == .delivered(reply: "LIG", note: nil)) }
        let targets = gateway.targets
        #expect(targets.count == 5)
        #expect(targets.allSatisfy { $0.hasPrefix("/prod/iot?stage=a&") && $0.contains("SimUniqueName=uno1") }, "\(targets)")
        #expect(gateway.hosts.allSatisfy { $0 == "localhost:\(gateway.port)" })
        // Keep-alive: five exchanges, at most one connection per event loop.
        #expect(gateway.connections <= System.coreCount, "\(gateway.connections) connections")

        // The certificate names localhost only: the same server by its address is refused, and retried.
        let wrongName = try APIGatewayUpstream(
            url: "https://127.0.0.1:\(gateway.port)/prod/iot", post: false, timeout: .seconds(5), client: .shared, tls: trusted)
        if case .retry(let reason) = await wrongName.deliver(Self.message(9), logger: Self.logger) {
            #expect(reason.hasPrefix("GET https://127.0.0.1:\(gateway.port) failed: "), "\(reason)")
        } else {
            Issue.record("a certificate for another name was accepted")
        }
        // The system's roots do not know the test CA.
        let untrusted = try APIGatewayUpstream(
            url: "https://localhost:\(gateway.port)/prod/iot", post: false, timeout: .seconds(5), client: .shared)
        guard case .retry(let reason) = await untrusted.deliver(Self.message(10), logger: Self.logger) else {
            Issue.record("a certificate from an unknown CA was accepted")
            return
        }
        #expect(reason.contains("certificate") || reason.contains("handshake"), "\(reason)")
        #expect(gateway.targets.count == 5, "nothing reached the server over an unchecked connection")
        await upstream.close()
        await gateway.stop()
    }

    @Test func serversThatCloseOrSpeakHTTP10AreAnsweredEachTime() async throws {
        for style in [TLSGateway.Style.closeAfterEach, .http10] {
            let gateway = try await TLSGateway.start(pki: nil, answer: #"{"reply": "ACK"}"#, style: style)
            let upstream = try APIGatewayUpstream(
                url: "http://127.0.0.1:\(gateway.port)/x", post: true, timeout: .seconds(5), client: .shared)
            for n in 0..<4 { #expect(await upstream.deliver(Self.message(n), logger: Self.logger) == .delivered(reply: "ACK", note: nil)) }
            #expect(gateway.targets.count == 4)
            #expect(gateway.connections == 4, "\(style): a connection the server ends is not used again")
            #expect(gateway.bodies.allSatisfy { $0.contains("MessageId=id-") }, "POST carries the form")
            await upstream.close()
            await gateway.stop()
        }
    }

    /// An answer over the limit is not an answer: dead-lettered, not fetched again and again.
    @Test func anAnswerOverTheLimitIsRejected() async throws {
        let huge = #"{"reply": ""# + String(repeating: "x", count: UpstreamExchange.maxAnswerBytes) + #""}"#
        let gateway = try await TLSGateway.start(pki: nil, answer: huge)
        let upstream = try APIGatewayUpstream(url: "http://127.0.0.1:\(gateway.port)/x", post: false, timeout: .seconds(5), client: .shared)
        #expect(
            await upstream.deliver(Self.message(1), logger: Self.logger)
                == .reject(reason: "the upstream's answer is over \(UpstreamExchange.maxAnswerBytes) bytes"))
        await upstream.close()
        await gateway.stop()
    }

    @Test func noAnswerTimesOutAndAGoneServerIsRetried() async throws {
        let gateway = try await TLSGateway.start(pki: nil, answer: "{}", style: .silent)
        let upstream = try APIGatewayUpstream(
            url: "http://127.0.0.1:\(gateway.port)/x", post: false, timeout: .milliseconds(300), client: .shared)
        let started = ContinuousClock.now
        #expect(
            await upstream.deliver(Self.message(1), logger: Self.logger)
                == .retry(reason: "GET http://127.0.0.1:\(gateway.port) failed: no answer within the timeout"))
        #expect(ContinuousClock.now - started < .seconds(5))
        await gateway.stop()
        // Nobody listening: a port held bound (so no parallel test's server takes it).
        let closed = try freeLoopbackPort()
        let held = try PortReservation(port: closed)
        defer { held.release() }
        let gone = try APIGatewayUpstream(url: "http://127.0.0.1:\(closed)/x", post: false, timeout: .seconds(5), client: .shared)
        guard case .retry(let reason) = await gone.deliver(Self.message(2), logger: Self.logger) else {
            Issue.record("a server that is gone is not a retry")
            return
        }
        #expect(reason.contains("cannot connect"), "\(reason)")
        #expect(throws: UpstreamURLError.self) {
            try APIGatewayUpstream(url: "ftp://127.0.0.1/x", post: false, timeout: .seconds(1), client: .shared)
        }
    }
}

/// A CA and a server certificate for localhost (the name only), made with openssl.
struct TestPKI {
    let folder: URL
    var caPath: String { folder.appendingPathComponent("ca.crt").path }
    var certificatePath: String { folder.appendingPathComponent("server.crt").path }
    var keyPath: String { folder.appendingPathComponent("server.key").path }

    init() async throws {
        folder = try makeTemporaryFolder("dtwin-pki")
        let dir = folder.path
        let script = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj '/CN=dtwin test CA' \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -keyout ca.key -out ca.crt
            openssl req -newkey rsa:2048 -nodes -sha256 -subj '/CN=localhost' -keyout server.key -out server.csr
            printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext
            openssl x509 -req -sha256 -days 2 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -extfile ext -out server.crt
            """
        // ChildProcess, not Foundation's Process: Process.run() crashed here once (SIGSEGV in
        // memmove), the over-read of a directory entry's name that swift-corelibs-foundation
        // fixed in PR 5472, intermittent on this toolchain. Nothing else here uses Process.
        let openssl = try ChildProcess(executable: "/bin/sh", arguments: ["-c", script])
        guard await openssl.exited(within: .seconds(60)), openssl.exitCode == 0 else {
            throw TestSupportError("openssl could not make the test certificates")
        }
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// A small HTTP/1.1 server on 127.0.0.1 (HTTPS with a ``TestPKI``) that records each request
/// and answers `answer`, in one of a few styles.
final class TLSGateway: Sendable {
    enum Style: Sendable { case keepAlive, closeAfterEach, http10, silent }

    let channel: any Channel
    let port: Int
    private let recorded = Mutex<(targets: [String], hosts: [String], bodies: [String], connections: Int)>(([], [], [], 0))

    var targets: [String] { recorded.withLock { $0.targets } }
    var hosts: [String] { recorded.withLock { $0.hosts } }
    var bodies: [String] { recorded.withLock { $0.bodies } }
    var connections: Int { recorded.withLock { $0.connections } }

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start(pki: TestPKI?, answer: String, style: Style = .keepAlive) async throws -> TLSGateway {
        let context = try pki.map { pki in
            try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: try NIOSSLCertificate.fromPEMFile(pki.certificatePath).map { .certificate($0) },
                    privateKey: .privateKey(try NIOSSLPrivateKey(file: pki.keyPath, format: .pem))))
        }
        let gateway = Box()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    gateway.value?.recorded.withLock { $0.connections += 1 }
                    if let context { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context)) }
                    try child.pipeline.syncOperations.configureHTTPServerPipeline()
                    try child.pipeline.syncOperations.addHandler(Responder(gateway: gateway, answer: answer, style: style))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = TLSGateway(channel: channel)
        gateway.value = server
        return server
    }

    func stop() async { try? await channel.close() }

    /// The server, for connections accepted before `start` returns it.
    final class Box: @unchecked Sendable {
        var value: TLSGateway?
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let gateway: Box
        let answer: String
        let style: Style
        var body = ""

        init(gateway: Box, answer: String, style: Style) {
            self.gateway = gateway
            self.answer = answer
            self.style = style
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                body = ""
                gateway.value?.recorded.withLock {
                    $0.targets.append(head.uri)
                    $0.hosts.append(head.headers["host"].first ?? "")
                }
            case .body(let chunk):
                body += String(buffer: chunk)
            case .end:
                gateway.value?.recorded.withLock { [body] in $0.bodies.append(body) }
                guard style != .silent else { return }
                var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(answer.utf8.count)")])
                if style == .closeAfterEach { headers.add(name: "Connection", value: "close") }
                let version: HTTPVersion = style == .http10 ? .http1_0 : .http1_1
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer)))), promise: nil)
                let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                let channel = context.channel
                if style != .keepAlive { done.whenComplete { _ in channel.close(promise: nil) } }
            }
        }
    }
}
