import Synchronization

/// Hands jobs from ``DeliveryLanes`` to a fixed set of worker tasks.
final class DeliveryScheduler<Job: Sendable>: Sendable {
    typealias Work = (lane: String, job: Job)
    private typealias Worker = CheckedContinuation<Work?, Never>

    private struct State: Sendable {
        var lanes = DeliveryLanes<Job>()
        var idleWorkers: [Int: Worker] = [:]
        var nextWorkerTicket = 0
        var finished = false

        /// Gives queued work to idle workers; once finished and empty, releases them all.
        mutating func wakeups() -> [(Worker, Work?)] {
            var wakeups: [(Worker, Work?)] = []
            while let ticket = idleWorkers.keys.first, let work = lanes.next() {
                wakeups.append((idleWorkers.removeValue(forKey: ticket)!, work))
            }
            if finished && lanes.queuedCount == 0 {
                wakeups += idleWorkers.values.map { ($0, nil) }
                idleWorkers.removeAll()
            }
            return wakeups
        }
    }

    private let state = Mutex(State())
    /// Rung after every change to the lanes: ``waitUntilIdle(deadline:)`` waits on it.
    private let changes = ChangeSignal()

    var queuedCount: Int { state.withLock { $0.lanes.queuedCount } }
    var inFlightCount: Int { state.withLock { $0.lanes.inFlightCount } }
    var isIdle: Bool { state.withLock { $0.lanes.isIdle } }

    func enqueue(_ job: Job, lane: String) {
        update { $0.lanes.enqueue(job, lane: lane) }
    }

    /// The lane's current job is done, and its next job (if any) becomes ready; returns the
    /// longest-waiting ready job (this lane's next, or another's) for the worker that did it,
    /// `nil` if none is ready (the worker then waits in ``next()``).
    ///
    /// The jobs go out in the order idle workers would take them, but the worker that is
    /// already running takes one instead of waking an idle worker and parking itself: one
    /// device's messages, delivered back to back, then cost no task switch each.
    func completeAndTakeNext(lane: String) -> Work? {
        update { state in
            state.lanes.complete(lane: lane)
            return state.lanes.next()
        }
    }

    /// No more jobs will come: workers exit once the queues are empty.
    func finish() {
        update { $0.finished = true }
    }

    /// `true` once nothing is queued or in flight; `false` if still busy at `deadline`.
    func waitUntilIdle(deadline: ContinuousClock.Instant) async -> Bool {
        await changes.wait(until: { self.isIdle }, deadline: deadline)
    }

    func removeAllQueued() -> [Job] {
        update { $0.lanes.removeAllQueued() }
    }

    /// The next job for a worker; `nil` once finished and empty, or when the task is cancelled.
    func next() async -> Work? {
        let ticket = state.withLock { state in
            state.nextWorkerTicket += 1
            return state.nextWorkerTicket
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Worker) in
                let immediate = state.withLock { state -> Work?? in
                    if let work = state.lanes.next() { return .some(work) }
                    if state.finished || Task.isCancelled { return .some(nil) }
                    state.idleWorkers[ticket] = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let worker = state.withLock { $0.idleWorkers.removeValue(forKey: ticket) }
            worker?.resume(returning: nil)
        }
    }

    private func update<T>(_ body: (inout State) -> T) -> T {
        let (result, wakeups) = state.withLock { state in
            let result = body(&state)
            return (result, state.wakeups())
        }
        for (worker, work) in wakeups { worker.resume(returning: work) }
        changes.changed()
        return result
    }
}
