import Synchronization

/// Running totals for the periodic stats line (and, later, metrics). Lock-free: the workers
/// and the intake (on the MQTT network thread) bump them on every message.
public final class BridgeCounters: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var received = 0
        public var delivered = 0
        public var retries = 0
        public var deadLettered = 0
        public var replies = 0
        public var lost = 0
    }

    let received = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let deadLettered = Atomic<Int>(0)
    let replies = Atomic<Int>(0)
    let lost = Atomic<Int>(0)

    public init() {}

    public var snapshot: Snapshot {
        Snapshot(
            received: received.load(ordering: .relaxed), delivered: delivered.load(ordering: .relaxed),
            retries: retries.load(ordering: .relaxed), deadLettered: deadLettered.load(ordering: .relaxed),
            replies: replies.load(ordering: .relaxed), lost: lost.load(ordering: .relaxed))
    }
}

extension Atomic where Value == Int {
    func increment() { add(1, ordering: .relaxed) }
}
