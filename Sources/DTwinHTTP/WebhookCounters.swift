import Synchronization

/// What the Twilio webhooks have done, for logs, tests and (later) metrics.
public final class WebhookCounters: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var smsReceived = 0
        /// Missing or bad signature: 403.
        public var forged = 0
        /// A polite refusal (unknown sender, not allowed, not a device name).
        public var refused = 0
        public var commandsSent = 0
        public var duplicates = 0
        public var statusCallbacks = 0
        public var ipCommands = 0
    }

    private let values = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { values.withLock { $0 } }

    func bump(_ field: WritableKeyPath<Snapshot, Int>) {
        values.withLock { $0[keyPath: field] += 1 }
    }
}
