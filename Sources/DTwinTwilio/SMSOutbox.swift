import CoreMetrics
import DTwinContract
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Sends the bridge's SMS, one at a time and in order, within the hourly budget.
///
/// - With credentials: Twilio's Messages API; 429, 5xx and lost connections are retried with
///   backoff (`retries` times), other 4xx are not (Twilio's code and message are logged).
/// - Without credentials: dry-run. The SMS is logged and listed in ``entries``, nothing is sent.
/// - Either way, at most `smsPerHour` SMS in any sliding hour; over that the SMS is not sent
///   and the outbox says `over-budget`.
public final class SMSOutbox: Service, Sendable {
    public struct Settings: Sendable {
        /// The number SMS are sent from (`twilio.from`).
        public var from: String
        /// Where Twilio reports delivery (`<http.publicURL>/twilio/status`), if known.
        public var statusCallback: String?
        public var smsPerHour: Int
        public var retries: Int = 4
        public var firstRetryDelay: Duration = .seconds(1)
        /// Entries kept for `GET /api/outbox`.
        public var keep: Int = 500

        public init(from: String, statusCallback: String?, smsPerHour: Int) {
            self.from = from
            self.statusCallback = statusCallback
            self.smsPerHour = smsPerHour
        }
    }

    struct State {
        var budget: SMSBudget
        var entries: [OutboxEntry] = []
        var nextID = 1
        var lastNotified: [PhoneNumber: DeviceName] = [:]
        var statusCallbacks: [String: Int] = [:]
    }

    /// `nil`: dry-run.
    public let client: TwilioClient?
    public let settings: Settings
    let logger: Logger
    let nowMillis: @Sendable () -> Int64
    let state: Mutex<State>
    let queue: AsyncStream<(Int, OutboundSMS)>
    let queueInput: AsyncStream<(Int, OutboundSMS)>.Continuation
    /// `dtwin_sms_total{result}`: every SMS ends accepted, failed, dry-run or over-budget.
    let results: [OutboxEntry.State: Counter]

    public init(
        client: TwilioClient?, settings: Settings, logger: Logger, metrics: any MetricsFactory = NOOPMetricsHandler.instance,
        nowMillis: @escaping @Sendable () -> Int64 = { Timestamp.nowMillis() }
    ) {
        results = Dictionary(
            uniqueKeysWithValues: [OutboxEntry.State.accepted, .failed, .dryRun, .overBudget].map {
                ($0, Counter(label: "dtwin_sms_total", dimensions: [("result", $0.rawValue)], factory: metrics))
            })
        self.client = client
        self.settings = settings
        self.logger = logger
        self.nowMillis = nowMillis
        state = Mutex(State(budget: SMSBudget(perHour: settings.smsPerHour)))
        (queue, queueInput) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    public var isDryRun: Bool { client == nil }

    /// Queues an SMS; returns its outbox id at once.
    @discardableResult
    public func submit(_ sms: OutboundSMS) -> Int {
        let id = state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.entries.append(
                OutboxEntry(
                    id: id, to: sms.to.rawValue, body: sms.body, device: sms.device?.rawValue, origin: sms.origin,
                    state: .pending, attempts: 0, createdAt: Timestamp.iso8601(millis: nowMillis())))
            if state.entries.count > settings.keep { state.entries.removeFirst(state.entries.count - settings.keep) }
            return id
        }
        queueInput.yield((id, sms))
        return id
    }

    /// The most recent SMS, oldest first.
    public var entries: [OutboxEntry] { state.withLock { $0.entries } }

    /// The device that last sent an SMS to `phone` (the target of a bare command from it).
    public func lastNotified(_ phone: PhoneNumber) -> DeviceName? { state.withLock { $0.lastNotified[phone] } }

    /// Status callbacks received, by `MessageStatus`.
    public var statusCallbackCounts: [String: Int] { state.withLock { $0.statusCallbacks } }

    /// Records a status callback (`POST /twilio/status`).
    public func recordStatus(sid: String, status: String, errorCode: String?) {
        let known = state.withLock { state in
            state.statusCallbacks[status, default: 0] += 1
            guard let index = state.entries.lastIndex(where: { $0.sid == sid }) else { return false }
            state.entries[index].twilioStatus = status
            if let errorCode { state.entries[index].error = "Twilio error \(errorCode)" }
            return true
        }
        var metadata: Logger.Metadata = ["sid": "\(sid)", "status": "\(status)", "known": "\(known)"]
        if let errorCode { metadata["errorCode"] = "\(errorCode)" }
        if status == "failed" || status == "undelivered" {
            logger.warning("SMS not delivered", metadata: metadata)
        } else {
            logger.info("SMS status", metadata: metadata)
        }
    }

    // MARK: sending

    public func run() async throws {
        await withGracefulShutdownHandler {
            // Ends once the queue is finished and emptied: what was queued before shutdown is sent.
            for await (id, sms) in queue { await send(id, sms) }
        } onGracefulShutdown: {
            self.queueInput.finish()
        }
    }

    func send(_ id: Int, _ sms: OutboundSMS) async {
        let takenAt = nowMillis()
        let allowed = state.withLock { $0.budget.take(now: takenAt) }
        guard allowed else {
            finish(id, .overBudget)
            logger.error(
                "SMS not sent: the hourly budget is spent (twilio.smsPerHour)",
                metadata: metadata(sms) + ["smsPerHour": "\(settings.smsPerHour)"])
            return
        }
        noteNotified(sms)
        guard let client else {
            finish(id, .dryRun)
            logger.notice("SMS dry run (no Twilio credentials): not sent", metadata: metadata(sms) + ["body": "\(sms.body)"])
            return
        }
        var delay = settings.firstRetryDelay
        for attempt in 1...(settings.retries + 1) {
            update(id) { $0.attempts = attempt }
            do throws(TwilioError) {
                let accepted = try await client.sendMessage(
                    to: sms.to, from: settings.from, body: sms.body, statusCallback: settings.statusCallback)
                finish(id, .accepted) {
                    $0.sid = accepted.sid
                    $0.twilioStatus = accepted.status
                }
                logger.info("SMS accepted by Twilio", metadata: metadata(sms) + ["sid": "\(accepted.sid)"])
                return
            } catch {
                if error.isRetryable && attempt <= settings.retries {
                    logger.warning("SMS failed; will retry", metadata: metadata(sms) + ["error": "\(error)", "attempt": "\(attempt)"])
                    do {
                        try await Task.sleep(for: delay * Double.random(in: 0.5...1))
                    } catch {
                        break
                    }
                    delay *= 2
                    continue
                }
                if error.certainlyNotSent { state.withLock { $0.budget.giveBack(takenAt: takenAt) } }
                finish(id, .failed) {
                    $0.error = "\(error)"
                }
                logger.error("SMS not sent", metadata: metadata(sms) + ["error": "\(error)", "attempts": "\(attempt)"])
                return
            }
        }
        finish(id, .failed) {
            $0.error = "shutdown before it could be sent"
        }
    }

    func noteNotified(_ sms: OutboundSMS) {
        guard let device = sms.device else { return }
        state.withLock { $0.lastNotified[sms.to] = device }
    }

    /// The SMS's final state, counted in `dtwin_sms_total`.
    func finish(_ id: Int, _ result: OutboxEntry.State, _ change: (inout OutboxEntry) -> Void = { _ in }) {
        update(id) {
            $0.state = result
            change(&$0)
        }
        results[result]?.increment()
    }

    func update(_ id: Int, _ change: (inout OutboxEntry) -> Void) {
        state.withLock { state in
            if let index = state.entries.lastIndex(where: { $0.id == id }) { change(&state.entries[index]) }
        }
    }

    func metadata(_ sms: OutboundSMS) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["to": "\(sms.to.masked)", "origin": "\(sms.origin.rawValue)"]
        if let device = sms.device { metadata["device"] = "\(device)" }
        return metadata
    }
}

extension Logger.Metadata {
    static func + (lhs: Self, rhs: Self) -> Self { lhs.merging(rhs) { $1 } }
}
