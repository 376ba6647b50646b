import DTwinBridge
import DTwinContract
import DTwinTwilio
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
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

    /// The limits that keep a slow or idle client from holding the server (README: "The HTTP
    /// server's limits"). A connection with no request under way (idle between requests, or a
    /// request head still arriving) is closed after ``idleTimeout``; a body must arrive within
    /// ``bodyTimeout`` (and is cut at once when the bridge shuts down); at most
    /// ``maxConnections`` are open at once, the rest wait in the kernel's queue.
    public struct Limits: Sendable {
        public var idleTimeout: Duration = .seconds(15)
        public var bodyTimeout: Duration = .seconds(5)
        public var maxConnections = 512

        public init() {}
    }

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
        host: String, port: Int, webhooks: TwilioWebhooks, api: DeviceAPI, dashboard: Dashboard, readiness: Readiness,
        health: any BridgeHealth, address: Address, metrics: PrometheusCollectorRegistry, limits: Limits = Limits(), logger: Logger
    ) -> some Service {
        let application = Application(
            router: router(
                webhooks: webhooks, api: api, dashboard: dashboard, readiness: readiness, health: health, metrics: metrics, limits: limits),
            server: .http1(configuration: .init(additionalChannelHandlers: [HTTP10Support()], idleTimeout: TimeAmount(limits.idleTimeout))),
            configuration: .init(
                address: .hostname(host, port: port), serverName: "dtwin",
                availableConnectionsDelegate: ConnectionLimit(limits.maxConnections, logger: logger)),
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
        webhooks: TwilioWebhooks, api: DeviceAPI, dashboard: Dashboard, readiness: Readiness, health: any BridgeHealth,
        metrics: PrometheusCollectorRegistry, limits: Limits = Limits()
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
        let timeout = limits.bodyTimeout
        router.post("/twilio/sms") { request, _ in await respond(request, bodyTimeout: timeout) { await webhooks.sms($0) } }
        router.post("/twilio/status") { request, _ in await respond(request, bodyTimeout: timeout) { await webhooks.status($0) } }
        router.post("/twilio/ipcommands") { request, _ in await respond(request, bodyTimeout: timeout) { await webhooks.ipCommand($0) } }
        // The dashboard: its page and files, and logging in and out.
        router.get("/") { _, _ in Dashboard.asset(DashboardPage.html, type: "text/html; charset=utf-8") }
        router.get("/dashboard.js") { _, _ in Dashboard.asset(DashboardPage.script, type: "text/javascript; charset=utf-8") }
        router.get("/dashboard.css") { _, _ in Dashboard.asset(DashboardPage.style, type: "text/css; charset=utf-8") }
        router.post("/login") { request, _ in await respond(request, errorsAsJSON: true, bodyTimeout: timeout) { dashboard.login($0) } }
        router.post("/logout") { request, _ in await respond(request, errorsAsJSON: true, bodyTimeout: timeout) { dashboard.logout($0) } }
        addAPIRoutes(to: router, api, dashboard: dashboard, bodyTimeout: timeout)
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

    static func apiRoutes(_ api: DeviceAPI, dashboard: Dashboard) -> [APIRoute] {
        [
            APIRoute(method: .get, path: "health") { _, _ in dashboard.healthAnswer() },
            APIRoute(method: .get, path: "deadletters") { _, _ in dashboard.deadLetters() },
            APIRoute(method: .get, path: "outbox") { request, _ in api.outboxListing(request) },
            APIRoute(method: .get, path: "devices") { request, _ in await api.devices(request) },
            APIRoute(method: .get, path: "devices/:device/readings") { request, device in await api.readings(request, device: device ?? "") },
            APIRoute(method: .post, path: "devices/:device/commands") { request, device in await api.command(request, device: device ?? "") },
            APIRoute(method: .get, path: "devices/:device/state") { request, device in await api.state(request, device: device ?? "") },
            APIRoute(method: .patch, path: "devices/:device/state") { request, device in await api.setState(request, device: device ?? "") },
            APIRoute(method: .post, path: "test-event") { request, _ in await api.testEvent(request) },
        ]
    }

    /// `/api/...` (README: "The HTTP API"), behind the bearer token (``BearerAuthentication``).
    /// Every answer is JSON, a wrong method or an unknown path included.
    static func addAPIRoutes(to router: Router<BasicRequestContext>, _ api: DeviceAPI, dashboard: Dashboard, bodyTimeout: Duration) {
        let group = router.group("api").add(middleware: BearerAuthentication(access: api.access, sessions: dashboard.sessions))
        // The live stream answers as it goes, so it is not one of the table's request-answer routes.
        group.get("events") { request, _ in dashboard.events(request) }
        let routes = apiRoutes(api, dashboard: dashboard)
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch]
        for route in routes {
            group.on(RouterPath(route.path), method: route.method) { request, context in
                await respond(request, errorsAsJSON: true, bodyTimeout: bodyTimeout) { await route.handle($0, context.parameters.get("device")) }
            }
        }
        // Each path once: every method it does not take answers 405 with the ones it does.
        var seen: Set<String> = []
        for route in routes where seen.insert(route.path).inserted {
            let allowed = routes.filter { $0.path == route.path }.map(\.method)
            for method in methods where !allowed.contains(method) {
                group.on(RouterPath(route.path), method: method) { _, _ in
                    var answer = DeviceAPI.error(405, "\(route.shown) takes \(allowed.map(\.rawValue).joined(separator: ", ")) only")
                    answer.headers["Allow"] = allowed.map(\.rawValue).joined(separator: ", ")
                    return response(answer)
                }
            }
        }
        let list = (routes.map { "\($0.method.rawValue) \($0.shown)" } + ["GET /api/events"]).joined(separator: ", ")
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

    /// Reads the body (bounded in size and time), calls `handler` with plain values, writes its
    /// answer.
    static func respond(
        _ request: Request, errorsAsJSON: Bool = false, bodyTimeout: Duration,
        _ handler: @Sendable (WebhookRequest) async -> WebhookAnswer
    ) async -> Response {
        func refusal(_ status: Int, _ text: String) -> Response {
            response(errorsAsJSON ? DeviceAPI.error(status, text) : .text(status, text))
        }
        let tooLarge = "the body is over \(maxBodyBytes) bytes"
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return refusal(413, tooLarge)
        }
        let body: ByteBuffer
        switch await readBody(request, within: bodyTimeout) {
        case .complete(let bytes): body = bytes
        case .tooLarge: return refusal(413, tooLarge)
        case .tooSlow: return refusal(408, "the body did not arrive in time (within \(bodyTimeout), and at once when the bridge stops)")
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let query = request.uri.queryParameters.map { FormParameter(name: String($0.key), value: String($0.value)) }
        let answer = await handler(
            WebhookRequest(target: request.uri.string, query: query, headers: headers, body: Array(body.readableBytesView)))
        return response(answer)
    }

    enum BodyRead: Sendable {
        case complete(ByteBuffer)
        case tooLarge
        /// Not complete within the time allowed, or the bridge began to shut down.
        case tooSlow
    }

    /// The request's body, unless it is over ``maxBodyBytes`` or does not arrive within
    /// `timeout`. A graceful shutdown ends the wait at once: a client that sends half a body
    /// must not hold up the bridge's exit.
    static func readBody(_ request: Request, within timeout: Duration) async -> BodyRead {
        let body = request.body
        return await withTaskGroup(of: BodyRead?.self) { group in
            group.addTask {
                do {
                    return .complete(try await body.collect(upTo: maxBodyBytes))
                } catch is NIOTooManyBytesError {
                    return .tooLarge
                } catch {
                    return .tooSlow  // cancelled, or the client went away
                }
            }
            group.addTask {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: timeout) }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .tooSlow
        }
    }

    static func response(_ answer: WebhookAnswer) -> Response {
        var headers: HTTPFields = [.contentType: answer.contentType]
        // After an error the connection is closed: what is left of a refused or slow body is
        // never read, and a client that misbehaves starts again from nothing.
        if answer.status >= 400 { headers[.connection] = "close" }
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

/// At most `maximum` connections open at once; the next wait in the kernel's accept queue.
/// Reaching the limit is logged once each time (Hummingbird's own delegate logs at trace only).
struct ConnectionLimit: AvailableConnectionsDelegate {
    let maximum: Int
    let logger: Logger
    var open = 0

    init(_ maximum: Int, logger: Logger) {
        self.maximum = maximum
        self.logger = logger
    }

    mutating func connectionOpened() {
        open += 1
        if open == maximum {
            logger.warning(
                "the HTTP server has reached its connection limit; new connections wait until one closes",
                metadata: ["connections": "\(open)"])
        }
    }

    mutating func connectionClosed() { open -= 1 }

    func isAcceptingNewConnections() -> Bool { open < maximum }
}
