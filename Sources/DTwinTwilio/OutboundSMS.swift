import DTwinContract

/// One SMS the bridge wants to send.
public struct OutboundSMS: Sendable, Equatable {
    /// Why it is sent, for the outbox and the logs.
    public enum Origin: String, Sendable, Equatable, Codable {
        /// A device published on `<prefix>/<dev>/sms`.
        case device
        /// An alert rule fired on a reading.
        case alert
        /// `dtwin sms` or the API.
        case manual
    }

    public var to: PhoneNumber
    public var body: String
    /// The device it is about: a bare command from this number goes back to it.
    public var device: DeviceName?
    public var origin: Origin

    public init(to: PhoneNumber, body: String, device: DeviceName?, origin: Origin) {
        self.to = to
        self.body = body
        self.device = device
        self.origin = origin
    }
}

/// What became of an outbound SMS (`GET /api/outbox`).
public struct OutboxEntry: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Equatable, Codable {
        /// Waiting to be sent (or between retries).
        case pending
        /// Twilio accepted it; `twilioStatus` follows its status callbacks.
        case accepted
        /// No credentials: logged, not sent.
        case dryRun = "dry-run"
        /// The hourly budget was spent: not sent.
        case overBudget = "over-budget"
        /// Twilio refused it, or every retry failed.
        case failed
    }

    public var id: Int
    public var to: String
    public var body: String
    public var device: String?
    public var origin: OutboundSMS.Origin
    public var state: State
    public var sid: String?
    /// Twilio's status: `queued` when accepted, then `sent`, `delivered`, `undelivered`, `failed`.
    public var twilioStatus: String?
    public var error: String?
    public var attempts: Int
    public var createdAt: String
}
