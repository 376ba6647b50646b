import DTwinBridge
import DTwinContract
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
            while ContinuousClock.now < deadline && !Task.isCancelled {
                if let port = bound.withLock({ $0 }) { return port }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return bound.withLock { $0 }
        }
    }

    public static func build(
        host: String, port: Int, webhooks: TwilioWebhooks, api: DeviceAPI, readiness: Readiness, health: any BridgeHealth,
        address: Address, metrics: PrometheusCollectorRegistry, logger: Logger
    ) -> some Service {
        let application = Application(
            router: router(webhooks: webhooks, api: api, readiness: readiness, health: health, metrics: metrics),
            configuration: .init(address: .hostname(host, port: port), serverName: "dtwin"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                address.set(bound)
                logger.info("HTTP server listening", metadata: ["host": "\(host)", "port": "\(bound)"])
            },
            logger: logger)
        return ListeningService(application: application, host: host, port: port)
    }

    /// Every route of the server; tests drive it without a socket (HummingbirdTesting's router client).
    public static func router(
        webhooks: TwilioWebhooks, api: DeviceAPI, readiness: Readiness, health: any BridgeHealth, metrics: PrometheusCollectorRegistry
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestCounter(factory: PrometheusMetricsFactory(registry: metrics)))
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ in response(await readiness.answer()) }
        router.get("/metrics") { _, _ in
            health.recordGauges()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer())))
        }
        router.post("/twilio/sms") { request, _ in try await respond(request) { await webhooks.sms($0) } }
        router.post("/twilio/status") { request, _ in try await respond(request) { await webhooks.status($0) } }
        router.post("/twilio/ipcommands") { request, _ in try await respond(request) { await webhooks.ipCommand($0) } }
        addAPIRoutes(to: router, api)
        return router
    }

    /// One route of `/api`: the table below registers it, and the answers for a wrong method or
    /// an unknown path are made from the same table.
    struct APIRoute: Sendable {
        let method: HTTPRequest.Method
        /// Under `/api`, with Hummingbird's `:device` for the path parameter.
        let path: String
        let handle: @Sendable (WebhookRequest, _ device: String?) async -> WebhookAnswer

        /// `/api/devices/<device>/readings`, for people reading an error.
        var shown: String { "/api/" + path.replacingOccurrences(of: ":device", with: "<device>") }
    }

    static func apiRoutes(_ api: DeviceAPI) -> [APIRoute] {
        [
            APIRoute(method: .get, path: "outbox") { request, _ in api.outboxListing(request) },
            APIRoute(method: .get, path: "devices") { request, _ in await api.devices(request) },
            APIRoute(method: .get, path: "devices/:device/readings") { request, device in await api.readings(request, device: device ?? "") },
            APIRoute(method: .post, path: "devices/:device/commands") { request, device in await api.command(request, device: device ?? "") },
            APIRoute(method: .post, path: "test-event") { request, _ in await api.testEvent(request) },
        ]
    }

    /// `/api/...` (README: "The HTTP API"), behind the bearer token (``BearerAuthentication``).
    /// Every answer is JSON, a wrong method or an unknown path included.
    static func addAPIRoutes(to router: Router<BasicRequestContext>, _ api: DeviceAPI) {
        let group = router.group("api").add(middleware: BearerAuthentication(access: api.access))
        let routes = apiRoutes(api)
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch]
        for route in routes {
            group.on(RouterPath(route.path), method: route.method) { request, context in
                try await respond(request, errorsAsJSON: true) { await route.handle($0, context.parameters.get("device")) }
            }
            let allowed = routes.filter { $0.path == route.path }.map(\.method)
            for method in methods where !allowed.contains(method) {
                group.on(RouterPath(route.path), method: method) { _, _ in
                    var answer = DeviceAPI.error(405, "\(route.shown) takes \(allowed.map(\.rawValue).joined(separator: ", ")) only")
                    answer.headers["Allow"] = allowed.map(\.rawValue).joined(separator: ", ")
                    return response(answer)
                }
            }
        }
        let list = routes.map { "\($0.method.rawValue) \($0.shown)" }.joined(separator: ", ")
        for method in methods {
            for path in ["", "**"] {
                group.on(RouterPath(path), method: method) { _, _ in response(DeviceAPI.error(404, "no such API route; the API has \(list)")) }
            }
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
        let query = request.uri.queryParameters.map { FormParameter(name: String($0.key), value: String($0.value)) }
        let answer = await handler(
            WebhookRequest(target: request.uri.string, query: query, headers: headers, body: Array(body.readableBytesView)))
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
    public init(message: String) { self.message = message }
    public var description: String { message }
}
