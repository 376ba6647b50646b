import DTwinBridge
import DTwinTwilio
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// The bridge's HTTP server (DESIGN.md §5, §6): Twilio webhooks, `/healthz`, `/readyz`,
/// `/metrics`, `/api`. A
/// Hummingbird `Application`, run as a `Service` in the bridge's service group.
public enum HTTPServer {
    /// Twilio's webhooks are a few hundred bytes; anything near this is not Twilio.
    public static let maxBodyBytes = 64 * 1024

    /// Where the server listens once it runs (port 0 picks a free one).
    public final class Address: Sendable {
        private let bound = Mutex<Int?>(nil)

        public init() {}

        func set(_ port: Int) { bound.withLock { $0 = port } }

        /// The bound port; waits (up to `timeout`) for the server to start.
        public func port(timeout: Duration = .seconds(10)) async -> Int? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if let port = bound.withLock({ $0 }) { return port }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return bound.withLock { $0 }
        }
    }

    public static func build(
        host: String, port: Int, webhooks: TwilioWebhooks, outbox: SMSOutbox?, access: APIAccess, address: Address,
        metrics: PrometheusCollectorRegistry, logger: Logger
    ) -> some Service {
        let router = Router()
        let bridge = webhooks.bridge
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ in response(readiness(bridge)) }
        router.get("/metrics") { _, _ in
            bridge.recordGauges()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        router.post("/twilio/sms") { request, _ in try await respond(request) { await webhooks.sms($0) } }
        router.post("/twilio/status") { request, _ in try await respond(request) { await webhooks.status($0) } }
        router.post("/twilio/ipcommands") { request, _ in try await respond(request) { await webhooks.ipCommand($0) } }
        router.get("/api/outbox") { request, _ in
            try await respond(request) { request in
                if let refusal = access.refusal(authorization: request.headers["authorization"]) { return refusal }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                let entries = outbox?.entries ?? []
                let body = OutboxListing(dryRun: outbox?.isDryRun ?? true, entries: entries)
                return .json(200, String(decoding: (try? encoder.encode(body)) ?? Data("{}".utf8), as: UTF8.self))
            }
        }
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "dtwin"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                address.set(bound)
                logger.info("HTTP server listening", metadata: ["host": "\(host)", "port": "\(bound)"])
            },
            logger: logger)
        return ListeningService(application: application, host: host, port: port)
    }

    /// Runs the server; a failure to listen says which address and which keys set it.
    struct ListeningService<Server: Service>: Service {
        let application: Server
        let host: String
        let port: Int

        func run() async throws {
            do {
                try await application.run()
            } catch let error as IOError {
                throw HTTPServerError(
                    message: "the HTTP server cannot listen on \(host):\(port) (http.host, http.port): \(String(cString: strerror(error.errnoCode)))")
            }
        }
    }

    /// 200 when the bridge can do its job; 503 with the reasons when it cannot.
    static func readiness(_ bridge: BridgeService) -> WebhookAnswer {
        let problems = bridge.unreadiness
        let body = ["ready": problems.isEmpty ? "true" : "false", "problems": problems.isEmpty ? "" : problems.joined(separator: "; ")]
        let json = (try? JSONEncoder().encode(body)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return .json(problems.isEmpty ? 200 : 503, json + "\n")
    }

    struct OutboxListing: Encodable {
        var dryRun: Bool
        var entries: [OutboxEntry]
    }

    /// Reads the body (bounded), calls `handler` with plain values, writes its answer.
    static func respond(
        _ request: Request, _ handler: @Sendable (WebhookRequest) async -> WebhookAnswer
    ) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return response(.text(413, "the body is over \(maxBodyBytes) bytes"))
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return response(.text(413, "the body is over \(maxBodyBytes) bytes"))
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let answer = await handler(WebhookRequest(target: request.uri.string, headers: headers, body: Array(body.readableBytesView)))
        return response(answer)
    }

    static func response(_ answer: WebhookAnswer) -> Response {
        var headers: HTTPFields = [.contentType: answer.contentType]
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        return Response(status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
    }
}

/// Why the HTTP server could not run.
public struct HTTPServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
