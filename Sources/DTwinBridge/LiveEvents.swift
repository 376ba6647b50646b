import DTwinContract
import Synchronization

/// What happens, for live views (the dashboard's `/api/events`): readings, device statuses,
/// twin documents, dead letters. Kept only while someone watches: with nobody watching, noting
/// an event costs one atomic load, so a bridge without an open dashboard pays nothing on its
/// hot path. The newest ``capacity`` events are kept; a watcher that falls further behind is
/// told so, and reloads.
public final class LiveEvents: Sendable {
    public enum Event: Sendable, Equatable {
        case reading(device: String, value: Double, unit: String?, atMillis: Int64)
        case status(device: String, status: String, atMillis: Int64)
        case twin(TwinDocument)
        case deadLetter(DeadLetter)
    }

    /// What a watcher gets since its cursor.
    public struct Batch: Sendable {
        public var events: [Event]
        /// Where the next call continues.
        public var cursor: Int64
        /// Events were dropped before this watcher read them.
        public var missed: Bool
    }

    public static let capacity = 4096

    private struct State {
        /// The sequence number of `ring[0]`.
        var first: Int64 = 1
        var ring: [Event] = []
        var next: Int64 { first + Int64(ring.count) }
    }

    private let watchers = Atomic<Int>(0)
    private let state = Mutex(State())
    /// The newest dead letters, kept whether or not anyone watches (they are rare, and the
    /// dashboard shows them when it opens).
    private let recent = Mutex<[DeadLetter]>([])
    public static let recentDeadLetterCount = 50

    public init() {}

    /// A dead letter: kept among the recent ones, and an event for watchers.
    public func noteDeadLetter(_ letter: DeadLetter) {
        recent.withLock { recent in
            recent.append(letter)
            if recent.count > Self.recentDeadLetterCount { recent.removeFirst(recent.count - Self.recentDeadLetterCount) }
        }
        note(.deadLetter(letter))
    }

    /// The newest dead letters, newest first.
    public var recentDeadLetters: [DeadLetter] { recent.withLock { Array($0.reversed()) } }

    /// Records `event` if anyone watches (the event is not even made otherwise).
    public func note(_ event: @autoclosure () -> Event) {
        guard watchers.load(ordering: .relaxed) > 0 else { return }
        let made = event()
        state.withLock { state in
            state.ring.append(made)
            if state.ring.count > Self.capacity {
                let excess = state.ring.count - Self.capacity
                state.ring.removeFirst(excess)
                state.first += Int64(excess)
            }
        }
    }

    /// Starts watching; returns the cursor from which events are seen.
    public func watch() -> Int64 {
        watchers.add(1, ordering: .relaxed)
        return state.withLock { $0.next }
    }

    public func unwatch() {
        watchers.subtract(1, ordering: .relaxed)
    }

    public var watcherCount: Int { watchers.load(ordering: .relaxed) }

    /// Where a watcher starting now would begin (nothing before it is shown to it).
    public var latestCursor: Int64 { state.withLock { $0.next } }

    /// The events after `cursor`.
    public func events(after cursor: Int64) -> Batch {
        state.withLock { state in
            let start = max(cursor, state.first)
            let events = Array(state.ring[Int(start - state.first)...])
            return Batch(events: events, cursor: state.next, missed: cursor < state.first)
        }
    }
}

/// The bridge's vital signs for a live view: is it connected, what waits, how much has come.
public struct LiveHealth: Sendable, Equatable, Encodable {
    public var brokerConnected: Bool
    /// Device messages in the spool (stored, not yet delivered).
    public var spoolMessages: Int
    /// Messages waiting for the broker's acknowledgement (commands, replies, dead letters, twins).
    public var waitingForBroker: Int
    /// Device messages taken in since the bridge started.
    public var received: Int
    public var delivered: Int
    public var deadLettered: Int
    public var problems: [String]

    public init(
        brokerConnected: Bool, spoolMessages: Int, waitingForBroker: Int, received: Int, delivered: Int, deadLettered: Int,
        problems: [String]
    ) {
        self.brokerConnected = brokerConnected
        self.spoolMessages = spoolMessages
        self.waitingForBroker = waitingForBroker
        self.received = received
        self.delivered = delivered
        self.deadLettered = deadLettered
        self.problems = problems
    }
}
