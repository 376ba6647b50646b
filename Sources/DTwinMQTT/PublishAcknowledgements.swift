/// Matches PUBACKs to the publishes waiting for them.
///
/// libmosquitto hands out a message id only when `mosquitto_publish` returns, but on loopback
/// the PUBACK can arrive (on the network thread) before the publisher has registered that id.
/// So while any publish is between "called" and "registered", acknowledgements nobody waits
/// for yet are kept in `early`; once no publish is in that window, `early` cannot matter and is
/// cleared.
struct PublishAcknowledgements<Waiter> {
    private var waiting: [Int32: (waiter: Waiter, deadline: ContinuousClock.Instant)] = [:]
    private var early: Set<Int32> = []
    private var inProgress = 0

    var waitingCount: Int { waiting.count }

    /// A publish is about to call into libmosquitto.
    mutating func begin() { inProgress += 1 }

    /// The publish failed in libmosquitto: nothing to wait for.
    mutating func abandon() {
        inProgress -= 1
        if inProgress == 0 { early.removeAll() }
    }

    /// Registers the waiter for `mid`. Returns `false` when the acknowledgement already came,
    /// in which case the caller resumes the waiter itself.
    mutating func register(_ mid: Int32, _ waiter: Waiter, deadline: ContinuousClock.Instant) -> Bool {
        inProgress -= 1
        defer { if inProgress == 0 { early.removeAll() } }
        if early.remove(mid) != nil { return false }
        waiting[mid] = (waiter, deadline)
        return true
    }

    /// The broker acknowledged `mid`: returns its waiter, if one is registered.
    mutating func acknowledged(_ mid: Int32) -> Waiter? {
        if let entry = waiting.removeValue(forKey: mid) { return entry.waiter }
        if inProgress > 0 { early.insert(mid) }
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
