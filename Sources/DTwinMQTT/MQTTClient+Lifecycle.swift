extension MQTTClient {
    /// Where a client is in its life. It only moves forward: created → running → stopping →
    /// closed (or straight from created to closed). One value instead of four flags, so no
    /// combination can say "stopping but never started" or "closed and connected".
    enum Lifecycle: Sendable, Equatable {
        /// Made and configured; no network thread yet.
        case created
        /// The network thread runs; `connected` from an accepted CONNACK to the next disconnect.
        case running(connected: Bool)
        /// ``MQTTClient/close()`` was called: the thread sends DISCONNECT (for at most until
        /// `deadline`) and ends.
        case stopping(deadline: ContinuousClock.Instant, connected: Bool)
        /// The network thread has ended, or the client was closed before it started.
        case closed

        var isConnected: Bool {
            switch self {
            case .running(let connected), .stopping(_, let connected): connected
            case .created, .closed: false
            }
        }

        /// `close()` has been called (or the thread has ended).
        var isStopping: Bool {
            switch self {
            case .stopping, .closed: true
            case .created, .running: false
            }
        }

        var hasStarted: Bool { self != .created }

        /// created → running; `false` when it was not created (started twice, or closed).
        mutating func start() -> Bool {
            guard self == .created else { return false }
            self = .running(connected: false)
            return true
        }

        /// The connection came up or went down (only while running or stopping).
        mutating func setConnected(_ connected: Bool) {
            switch self {
            case .running: self = .running(connected: connected)
            case .stopping(let deadline, _): self = .stopping(deadline: deadline, connected: connected)
            case .created, .closed: break
            }
        }

        /// → stopping (or closed, when never started). Returns what it was, for the caller.
        mutating func stop(deadline: ContinuousClock.Instant) -> (wasConnected: Bool, wasStarted: Bool) {
            let before = (isConnected, hasStarted)
            switch self {
            case .created: self = .closed
            case .running(let connected): self = .stopping(deadline: deadline, connected: connected)
            case .stopping, .closed: break
            }
            return before
        }

        /// Whether the network thread should end now: stopping, and disconnected or out of time.
        func threadShouldEnd(now: ContinuousClock.Instant) -> Bool {
            switch self {
            case .stopping(let deadline, let connected): !connected || now >= deadline
            case .closed: true
            case .created, .running: false
            }
        }
    }
}
