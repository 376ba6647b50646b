/// Matches PUBACKs to the publishes waiting for them.
///
/// libmosquitto hands out a message id only when `mosquitto_publish` returns, but on loopback
/// the PUBACK can arrive (on the network thread) before the publisher has registered that id.
/// So while any publish is between "called" and "registered", acknowledgements nobody waits
/// for yet are kept in `early`, with their reason code; once no publish is in that window,
/// `early` cannot matter and is cleared.
///
/// A reason code is MQTT 5's PUBACK code: below 128 the message was taken, from 128 on it was
/// refused (MQTT 3.1.1 has no code: always 0).
struct PublishAcknowledgements<Waiter> {
    enum Registration: Equatable {
        /// The waiter waits for its PUBACK.
        case waiting
        /// The PUBACK came first, with this reason code: the caller settles the waiter itself.
        case alreadyAcknowledged(reasonCode: Int32)
    }

    private var waiting: [Int32: (waiter: Waiter, deadline: ContinuousClock.Instant)] = [:]
    private var early: [Int32: Int32] = [:]
    private var inProgress = 0

    var waitingCount: Int { waiting.count }

    /// A publish is about to call into libmosquitto.
    mutating func begin() { inProgress += 1 }

    /// The publish failed in libmosquitto: nothing to wait for.
    mutating func abandon() {
        inProgress -= 1
        if inProgress == 0 { early.removeAll() }
    }

    /// Registers the waiter for `mid`, unless its acknowledgement already came.
    mutating func register(_ mid: Int32, _ waiter: Waiter, deadline: ContinuousClock.Instant) -> Registration {
        inProgress -= 1
        defer { if inProgress == 0 { early.removeAll() } }
        if let reasonCode = early.removeValue(forKey: mid) { return .alreadyAcknowledged(reasonCode: reasonCode) }
        waiting[mid] = (waiter, deadline)
        return .waiting
    }

    /// The broker acknowledged `mid` with `reasonCode`: returns its waiter, if one is registered.
    mutating func acknowledged(_ mid: Int32, reasonCode: Int32 = 0) -> Waiter? {
        if let entry = waiting.removeValue(forKey: mid) { return entry.waiter }
        if inProgress > 0 { early[mid] = reasonCode }
        return nil
    }

    /// Removes and returns the waiters whose deadline has passed.
    mutating func expired(at now: ContinuousClock.Instant) -> [Waiter] {
        let late = waiting.filter { $0.value.deadline <= now }
        for mid in late.keys { waiting.removeValue(forKey: mid) }
        return late.values.map(\.waiter)
    }

    mutating func removeAll() -> [Waiter] {
        defer { waiting.removeAll() }
        return waiting.values.map(\.waiter)
    }
}
extension PublishAcknowledgements: Sendable where Waiter: Sendable {}
