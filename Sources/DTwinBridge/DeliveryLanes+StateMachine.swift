import DequeModule

/// Per-device delivery lanes: each device's messages are delivered one at a time and in order,
/// while different devices proceed in parallel, so one device whose messages keep failing
/// (and being retried) never holds up the others.
///
/// Invariant: a lane is in `ready` exactly when it has queued jobs and is not busy.
struct DeliveryLanes<Job> {
    private var queues: [String: Deque<Job>] = [:]
    private var ready: Deque<String> = []
    private var busy: Set<String> = []
    private(set) var queuedCount = 0

    var inFlightCount: Int { busy.count }
    var isIdle: Bool { queuedCount == 0 && busy.isEmpty }

    mutating func enqueue(_ job: Job, lane: String) {
        queues[lane, default: []].append(job)
        queuedCount += 1
        if queues[lane]!.count == 1 && !busy.contains(lane) { ready.append(lane) }
    }

    /// The next job of the longest-waiting ready lane; that lane is busy until `complete`.
    mutating func next() -> (lane: String, job: Job)? {
        guard let lane = ready.popFirst() else { return nil }
        let job = queues[lane]!.removeFirst()
        if queues[lane]!.isEmpty { queues.removeValue(forKey: lane) }
        queuedCount -= 1
        busy.insert(lane)
        return (lane, job)
    }

    /// The lane's current job is done (delivered, dead-lettered or abandoned).
    mutating func complete(lane: String) {
        guard busy.remove(lane) != nil else { return }
        if queues[lane] != nil { ready.append(lane) }
    }

    /// Takes every queued (not in-flight) job out, lane by lane in order.
    mutating func removeAllQueued() -> [Job] {
        let jobs = queues.keys.sorted().flatMap { Array(queues[$0]!) }
        queues.removeAll()
        ready.removeAll()
        queuedCount = 0
        return jobs
    }
}
extension DeliveryLanes: Sendable where Job: Sendable {}
