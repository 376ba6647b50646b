import Synchronization

/// Lets tasks wait until a condition holds, without polling: whoever changes what the condition
/// reads calls ``changed()``, and every waiter checks its condition again. A waiter wakes on a
/// change or at its deadline, never on a timer tick.
///
/// A generation number closes the gap between "checked, false" and "waiting": a change in
/// between is seen, so no wake-up is missed. ``changed()`` takes no lock while nobody waits,
/// because it is called on hot paths (every delivery).
final class ChangeSignal: Sendable {
    private struct Waiters {
        var next = 0
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let generation = Atomic<Int>(0)
    private let waiterCount = Atomic<Int>(0)
    private let waiters = Mutex(Waiters())

    /// Something a condition reads has changed.
    func changed() {
        generation.add(1, ordering: .sequentiallyConsistent)
        guard waiterCount.load(ordering: .sequentiallyConsistent) > 0 else { return }
        let woken = waiters.withLock { waiters in
            defer { waiters.waiting.removeAll() }
            return Array(waiters.waiting.values)
        }
        waiterCount.subtract(woken.count, ordering: .sequentiallyConsistent)
        for continuation in woken { continuation.resume() }
    }

    /// `true` as soon as `condition` holds; `false` if it still does not at `deadline`, or when
    /// the waiting task is cancelled.
    func wait(until condition: @Sendable () -> Bool, deadline: ContinuousClock.Instant) async -> Bool {
        while true {
            let seen = generation.load(ordering: .sequentiallyConsistent)
            if condition() { return true }
            if ContinuousClock.now >= deadline || Task.isCancelled { return false }
            // The next change, or the deadline, whichever comes first.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.change(after: seen) }
                group.addTask { try? await Task.sleep(until: deadline) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Returns once the generation has moved past `seen` (or the task is cancelled).
    private func change(after seen: Int) async {
        let id = waiters.withLock { waiters in
            waiters.next += 1
            return waiters.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                waiters.withLock { $0.waiting[id] = continuation }
                waiterCount.add(1, ordering: .sequentiallyConsistent)
                // Registered first, then checked: a change before the check is seen here, one
                // after it finds the waiter. Whoever removes the waiter resumes it.
                if generation.load(ordering: .sequentiallyConsistent) != seen || Task.isCancelled { wake(id) }
            }
        } onCancel: {
            wake(id)
        }
    }

    private func wake(_ id: Int) {
        guard let continuation = waiters.withLock({ $0.waiting.removeValue(forKey: id) }) else { return }
        waiterCount.subtract(1, ordering: .sequentiallyConsistent)
        continuation.resume()
    }
}
