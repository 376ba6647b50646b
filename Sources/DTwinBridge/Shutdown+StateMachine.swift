/// The bridge's graceful shutdown (SIGTERM, SIGINT), as a pure state machine: the driver
/// (``BridgeService/shutDown()``) performs each ``Action`` and reports what came of it; the
/// machine says what comes next. No clock, no I/O: every path is unit-tested.
///
/// The order, and why:
/// 1. Drain the delivery lanes while replies and dead letters can still be published. With a
///    spool the workers only finish what is in flight (the rest waits on disk for the next
///    start); without one memory is the only copy, so the lanes are delivered until idle and
///    quiet (no new message for a moment).
/// 2. Publish what waits for the broker (replies, commands, dead letters), if connected.
/// 3. Announce `offline` (the broker sends the last will only for an unclean disconnect).
/// 4. Disconnect: no message is taken in after this.
/// 5. Let the workers deliver what arrived in between, until the deadline.
/// 6. Close up: log in full what only memory held, commit removals, close the spool.
/// Every wait ends at the one deadline (`shutdownTimeout`); the steps after it still run.
struct ShutdownStateMachine: Sendable, Equatable {
    enum Phase: Sendable, Equatable {
        case running
        case drainingLanes
        case drainingPublishQueue
        case announcingOffline
        case disconnecting
        case finishingWorkers
        case closingUp
        case done
    }

    enum Action: Sendable, Equatable {
        /// Wait until no delivery is queued or in flight; `untilQuiet`: and no new message has
        /// come for a moment. Or the deadline.
        case drainLanes(untilQuiet: Bool)
        /// Wait until nothing waits for the broker, or the deadline.
        case drainPublishQueue
        case announceOffline
        case disconnect
        /// No more work is handed out once the lanes are empty; wait for the workers, or the deadline.
        case finishWorkers
        case closeUp
        /// Nothing more: the shutdown is complete (or the event did not fit the phase).
        case none
    }

    /// How a wait ended.
    enum Outcome: Sendable, Equatable {
        case completed
        case deadlineReached
    }

    let hasSpool: Bool
    private(set) var phase: Phase = .running

    init(hasSpool: Bool) {
        self.hasSpool = hasSpool
    }

    mutating func begin() -> Action {
        guard phase == .running else { return .none }
        phase = .drainingLanes
        return .drainLanes(untilQuiet: !hasSpool)
    }

    /// The lanes drained (or the deadline came). Messages for the broker can go out only while
    /// connected; otherwise they stay stored for the next start.
    mutating func lanesDrained(_ outcome: Outcome, connected: Bool) -> Action {
        guard phase == .drainingLanes else { return .none }
        return afterDelivery(connected: connected)
    }

    mutating func publishQueueDrained(_ outcome: Outcome, connected: Bool) -> Action {
        guard phase == .drainingPublishQueue else { return .none }
        if connected {
            phase = .announcingOffline
            return .announceOffline
        }
        phase = .disconnecting
        return .disconnect
    }

    /// Sent or not, the next step is the same: the broker publishes the will otherwise.
    mutating func offlineAnnounced() -> Action {
        guard phase == .announcingOffline else { return .none }
        phase = .disconnecting
        return .disconnect
    }

    mutating func disconnected() -> Action {
        guard phase == .disconnecting else { return .none }
        phase = .finishingWorkers
        return .finishWorkers
    }

    mutating func workersFinished(_ outcome: Outcome) -> Action {
        guard phase == .finishingWorkers else { return .none }
        phase = .closingUp
        return .closeUp
    }

    mutating func closedUp() -> Action {
        guard phase == .closingUp else { return .none }
        phase = .done
        return .none
    }

    private mutating func afterDelivery(connected: Bool) -> Action {
        if connected {
            phase = .drainingPublishQueue
            return .drainPublishQueue
        }
        phase = .disconnecting
        return .disconnect
    }
}
