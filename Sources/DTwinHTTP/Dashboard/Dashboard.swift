import DTwinBridge
import DTwinContract
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The live dashboard (README: "The dashboard"): one page at `GET /` whose script and style are
/// built into the binary (no CDN), a login with the API token that opens a session kept in an
/// `HttpOnly` cookie, and `/api/events`, the stream of what happens (Server-Sent Events). The
/// page reads and changes everything else through the documented `/api` routes.
public final class Dashboard: Sendable {
    /// The header every change the page asks for carries: another site's page cannot set it
    /// without the bridge's consent (a CORS preflight it never gives), so a request with the
    /// session cookie but without it is refused.
    public static let requestHeader = "X-DTwin-Request"
    /// How often a watcher gets what happened: a few updates a second, never one per message.
    static let pushInterval = Duration.milliseconds(400)
    /// How often the health goes out when nothing else does, and a comment keeps proxies from
    /// closing a quiet stream.
    static let healthInterval = Duration.seconds(2)

    let access: APIAccess
    let sessions: DashboardSessions
    let live: LiveEvents
    let health: any BridgeHealth
    /// Cookies are `Secure` when people reach the bridge over https (`http.publicURL`), or the
    /// request says it came through a TLS proxy (`X-Forwarded-Proto: https`).
    let publicURLIsHTTPS: Bool
    let logger: Logger
    /// One push for every open page.
    let broadcast: LiveBroadcast

    public init(
        access: APIAccess, sessions: DashboardSessions = DashboardSessions(), live: LiveEvents, health: any BridgeHealth,
        publicURL: String, logger: Logger
    ) {
        self.access = access
        self.sessions = sessions
        self.live = live
        self.health = health
        self.publicURLIsHTTPS = publicURL.lowercased().hasPrefix("https://")
        self.logger = logger
        broadcast = LiveBroadcast(live: live) { cursor, force, dashboards in
            Self.push(live: live, health: health, &cursor, force: force, dashboards: dashboards)
        }
    }

    // MARK: the page

    /// What the page's files may do: load only from the bridge, run no inline script, never
    /// be framed.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-store",
    ]

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: logging in and out

    /// `POST /login` with the form field `token`: the API token opens a session.
    func login(_ request: WebhookRequest) -> WebhookAnswer {
        guard request.headers[Self.requestHeader.lowercased()] == "1" else {
            return DeviceAPI.error(403, "log in from the dashboard's own page (the request lacks \(Self.requestHeader): 1)")
        }
        let token = (try? FormEncoding.decode(request.body))?[first: "token"] ?? ""
        if let refusal = access.refusal(authorization: "Bearer " + token) {
            if refusal.status == 401 { logger.notice("dashboard login refused: wrong token") }
            return refusal.status == 401 ? DeviceAPI.error(401, "wrong token: use the value of DTWIN_API_TOKEN") : refusal
        }
        let id = sessions.open(atMillis: Timestamp.nowMillis())
        logger.info("dashboard login")
        var answer = DeviceAPI.json(200, ["session": "open"])
        answer.headers["Set-Cookie"] = cookie(id, maxAge: DashboardSessions.lifetime / 1000, request: request)
        return answer
    }

    /// `POST /logout`: the session ends, the cookie goes.
    func logout(_ request: WebhookRequest) -> WebhookAnswer {
        if let id = DashboardSessions.id(inCookieHeader: request.headers["cookie"]) { sessions.close(id) }
        var answer = DeviceAPI.json(200, ["session": "closed"])
        answer.headers["Set-Cookie"] = cookie("", maxAge: 0, request: request)
        return answer
    }

    func cookie(_ value: String, maxAge: Int64, request: WebhookRequest) -> String {
        let secure = publicURLIsHTTPS || request.headers["x-forwarded-proto"]?.lowercased() == "https"
        return "\(DashboardSessions.cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    // MARK: GET /api/health, /api/deadletters

    func healthAnswer() -> WebhookAnswer { DeviceAPI.json(200, health.liveHealth) }

    func deadLetters() -> WebhookAnswer {
        DeviceAPI.json(200, ["deadLetters": live.recentDeadLetters.map(DeadLetterView.init)])
    }

    // MARK: GET /api/events

    /// What one push carries: everything since the last one, and the bridge's health.
    struct Push: Encodable {
        struct Reading: Encodable {
            var device: String
            var value: Double
            var unit: String?
            var at: String
        }
        struct Status: Encodable {
            var device: String
            var status: String
            var at: String
        }
        var readings: [Reading] = []
        var statuses: [Status] = []
        var twins: [TwinDocument.Published] = []
        var deadLetters: [DeadLetterView] = []
        var health: LiveHealth
        /// Messages taken in per second since the last push.
        var rate: Double
        /// Events were dropped before this page read them: it should load everything again.
        var missed: Bool
        var dashboards: Int
    }

    /// A dead letter as the page shows it (the payload as text where it is text).
    struct DeadLetterView: Encodable {
        var topic: String
        var device: String?
        var reason: String
        var receivedAt: String?
        var payload: String

        init(_ letter: DeadLetter) {
            topic = letter.topic
            device = letter.device
            reason = letter.reason
            receivedAt = letter.receivedAt
            let bytes = letter.payloadBytes ?? []
            payload = String(validating: bytes.prefix(200), as: UTF8.self) ?? "\(bytes.count) bytes, not text"
        }
    }

    /// The stream: the current health at once, then the shared pushes (``LiveBroadcast``); it
    /// ends when the page goes or the bridge stops.
    func events(_ request: Request) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = "text/event-stream"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"  // nginx: pass each event on at once
        let (id, pushes) = broadcast.open()
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { [self] writer in
                defer { broadcast.close(id) }
                try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
                var now = LiveBroadcast.PushCursor(events: live.latestCursor, received: 0, at: .now)
                if let first = Self.push(live: live, health: health, &now, force: true, dashboards: broadcast.dashboards) {
                    try await writer.write(first)
                }
                try await withGracefulShutdownHandler {
                    for await push in pushes { try await writer.write(push) }
                } onGracefulShutdown: {
                    self.broadcast.close(id)
                }
                try await writer.finish(nil)
            })
    }

    /// The next push as an event, or `nil` when there is nothing new and it is not yet time
    /// for the health.
    static func push(
        live: LiveEvents, health: any BridgeHealth, _ cursor: inout LiveBroadcast.PushCursor, force: Bool, dashboards: Int
    ) -> ByteBuffer? {
        let batch = live.events(after: cursor.events)
        guard force || !batch.events.isEmpty || batch.missed else { return nil }
        let now = ContinuousClock.now
        let health = health.liveHealth
        let seconds = max((now - cursor.at).seconds, 0.001)
        var push = Push(
            health: health, rate: cursor.received == 0 ? 0 : Double(health.received - cursor.received) / seconds, missed: batch.missed,
            dashboards: dashboards)
        cursor = .init(events: batch.cursor, received: health.received, at: now)
        for event in batch.events {
            switch event {
            case .reading(let device, let value, let unit, let atMillis):
                push.readings.append(.init(device: device, value: value, unit: unit, at: Timestamp.iso8601(millis: atMillis)))
            case .status(let device, let status, let atMillis):
                push.statuses.append(.init(device: device, status: status, at: Timestamp.iso8601(millis: atMillis)))
            case .twin(let document):
                // Only the newest document of each device matters.
                push.twins.removeAll { $0.document.device == document.device }
                push.twins.append(document.published)
            case .deadLetter(let letter):
                push.deadLetters.append(DeadLetterView(letter))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(push)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "data: \(json)\n\n")
    }
}
