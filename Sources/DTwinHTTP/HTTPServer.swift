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

/// The bridge's HTTP server (README: "SMS and cellular devices", "The HTTP API"): Twilio webhooks, `/healthz`, `/readyz`,
/// `/metrics`, `/api`. A Hummingbird `Application`, run as a `Service` in the bridge's service
/// group.
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
        host: String, port: Int, webhooks: TwilioWebhooks, api: DeviceAPI, readiness: Readiness, address: Address,
        metrics: PrometheusCollectorRegistry, logger: Logger
    ) -> some Service {
        let router = Router()
        router.add(middleware: RequestCounter(factory: PrometheusMetricsFactory(registry: metrics)))
        let bridge = webhooks.bridge
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ in response(await readiness.answer()) }
        router.get("/metrics") { _, _ in
            bridge.recordGauges()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        router.post("/twilio/sms") { request, _ in try await respond(request) { await webhooks.sms($0) } }
        router.post("/twilio/status") { request, _ in try await respond(request) { await webhooks.status($0) } }
        router.post("/twilio/ipcommands") { request, _ in try await respond(request) { await webhooks.ipCommand($0) } }
        addAPIRoutes(to: router, api)
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

    /// `/api/...` (README: "The HTTP API"). Every route, and every path under `/api` that is not one,
    /// answers JSON behind the bearer token.
    static func addAPIRoutes(to router: Router<BasicRequestContext>, _ api: DeviceAPI) {
        func route(_ handler: @escaping @Sendable (WebhookRequest, [Substring]) async -> WebhookAnswer)
            -> @Sendable (
                Request, BasicRequestContext
            ) async throws -> Response
        {
            { request, _ in
                // Path segments as sent (percent-encoding kept): `["api", "devices", "a", "readings"]`.
                let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
                return try await respond(request, errorsAsJSON: true) { request in
                    await api.authorised(request) { await handler(request, segments) }
                }
            }
        }
        router.get("/api/outbox", use: route { _, _ in api.outboxListing() })
        router.get("/api/devices", use: route { request, _ in await api.devices(request) })
        router.get("/api/devices/:device/readings", use: route { request, path in await api.readings(request, device: String(path[2])) })
        router.post("/api/devices/:device/commands", use: route { request, path in await api.command(request, device: String(path[2])) })
        router.post("/api/test-event", use: route { request, _ in await api.testEvent(request) })
        let routes: [(path: String, method: String)] = [
            ("/api/outbox", "GET"), ("/api/devices", "GET"), ("/api/devices/*/readings", "GET"), ("/api/devices/*/commands", "POST"),
            ("/api/test-event", "POST"),
        ]
        let elsewhere = route { request, path in
            let shape = path.enumerated().map { $0.offset == 2 && path.count == 4 && path[1] == "devices" ? "*" : String($0.element) }
            let match = routes.first { $0.path == "/" + shape.joined(separator: "/") }
            if let match {
                var answer = DeviceAPI.error(405, "\(match.path.replacingOccurrences(of: "*", with: "<device>")) takes \(match.method) only")
                answer.headers["Allow"] = match.method
                return answer
            }
            let list = routes.map { "\($0.method) \($0.path.replacingOccurrences(of: "*", with: "<device>"))" }.joined(separator: ", ")
            return DeviceAPI.error(404, "no such API route; the API has \(list)")
        }
        for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] {
            router.on("/api/**", method: method, use: elsewhere)
            router.on("/api", method: method, use: elsewhere)
        }
        for (path, method) in routes {
            let other: [HTTPRequest.Method] = method == "GET" ? [.post, .put, .delete, .patch] : [.get, .put, .delete, .patch]
            for verb in other { router.on(RouterPath(path.replacingOccurrences(of: "*", with: ":device")), method: verb, use: elsewhere) }
        }
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

    /// Reads the body (bounded), calls `handler` with plain values, writes its answer.
    static func respond(
        _ request: Request, errorsAsJSON: Bool = false, _ handler: @Sendable (WebhookRequest) async -> WebhookAnswer
    ) async throws -> Response {
        let tooLarge = "the body is over \(maxBodyBytes) bytes"
        let tooLargeAnswer = errorsAsJSON ? DeviceAPI.error(413, tooLarge) : .text(413, tooLarge)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return response(tooLargeAnswer)
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return response(tooLargeAnswer)
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
