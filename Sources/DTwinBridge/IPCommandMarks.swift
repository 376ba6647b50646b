import DTwinContract
import Synchronization

/// Messages the bridge itself published on a device's `up` topic for a Super SIM IP command
/// (`POST /twilio/ipcommands`). When they come back from the broker they are delivered with
/// `Source` = `twilio-ipcommand` instead of `mqtt`.
///
/// MQTT 3.1.1 has no way to tag a message, so the mark is the topic and the exact payload,
/// kept for ten minutes at most.
final class IPCommandMarks: Sendable {
    struct Mark: Hashable {
        var topic: String
        var payload: [UInt8]
    }

    static let lifetimeMillis: Int64 = 600_000
    static let maxMarks = 10_000

    private let marks = Mutex<[Mark: [Int64]]>([:])
    /// Checked first on the hot path, so messages pay for a lock only while marks exist.
    private let count = Atomic<Int>(0)

    func mark(topic: String, payload: [UInt8], now: Int64) {
        marks.withLock { marks in
            if count.load(ordering: .relaxed) >= Self.maxMarks { forgetExpired(&marks, now: now) }
            marks[Mark(topic: topic, payload: payload), default: []].append(now)
            count.add(1, ordering: .relaxed)
        }
    }

    /// Whether this message is one the bridge published for an IP command (the mark is used up).
    func consume(topic: String, payload: [UInt8], now: Int64) -> Bool {
        guard count.load(ordering: .relaxed) > 0 else { return false }
        return marks.withLock { marks in
            forgetExpired(&marks, now: now)
            let mark = Mark(topic: topic, payload: payload)
            guard var times = marks[mark], !times.isEmpty else { return false }
            times.removeFirst()
            marks[mark] = times.isEmpty ? nil : times
            count.subtract(1, ordering: .relaxed)
            return true
        }
    }

    private func forgetExpired(_ marks: inout [Mark: [Int64]], now: Int64) {
        for (mark, times) in marks {
            let kept = times.filter { now - $0 < Self.lifetimeMillis }
            if kept.count != times.count {
                count.subtract(times.count - kept.count, ordering: .relaxed)
                marks[mark] = kept.isEmpty ? nil : kept
            }
        }
    }
}
