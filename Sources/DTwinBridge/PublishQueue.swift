import DTwinSpool
import Logging
import Synchronization

/// Everything the bridge publishes to devices and to the dead letter topic waits here until the
/// broker has acknowledged it (PUBACK): in the spool file when there is one, so a command
/// accepted while the broker is down, or just before a crash, is published once it is back.
/// Without a spool it waits in memory (a person's command is refused past `spool.maxBytes`).
///
/// ``run(mqtt:logger:)`` publishes oldest first, one message at a time per topic (a device
/// gets its commands in order) and topics side by side. A message the broker acknowledged but
/// whose removal a crash prevented is published again: at least once, like the device side.
public final class PublishQueue: Sendable {
    /// Where waiting messages live.
    enum Storage: Sendable {
        case spool(Spool)
        case memory(MemoryOutbound)
    }

    let storage: Storage
    let doorbell = Doorbell()
    let waiters = Mutex(PublishWaiters())
    /// Rung whenever messages leave: ``waitUntilEmpty(deadline:)`` waits on it.
    let removals = ChangeSignal()

    public init(spool: Spool?, memoryLimit: Int) {
        storage = spool.map(Storage.spool) ?? .memory(MemoryOutbound(maxBytes: memoryLimit))
    }

    /// Whether waiting messages survive a restart.
    public var isDurable: Bool {
        if case .spool = storage { return true }
        return false
    }

    /// Messages waiting for the broker.
    public var count: Int {
        switch storage {
        case .spool(let spool): spool.outboundCount
        case .memory(let memory): memory.count
        }
    }

    /// Stores `message` for publication and returns its number. Blocks the calling thread for
    /// one SQLite write; see ``Spool/appendOutbound(_:bounded:)`` for `bounded`.
    @discardableResult
    public func enqueue(_ message: OutboundMessage, bounded: Bool) throws(SpoolError) -> Int64 {
        let seq: Int64
        switch storage {
        case .spool(let spool): seq = try spool.appendOutbound(message, bounded: bounded)
        case .memory(let memory): seq = try memory.append(message, bounded: bounded)
        }
        doorbell.ring()
        return seq
    }

    /// ``enqueue(_:bounded:)`` for async callers: with a spool, the write runs on the spool's
    /// writer thread while the caller is suspended (no SQLite write, nor an fsync with
    /// `spool.sync: full`, on an event loop or the cooperative pool).
    @discardableResult
    public func enqueue(_ message: OutboundMessage, bounded: Bool) async throws(SpoolError) -> Int64 {
        let seq: Int64
        switch storage {
        case .spool(let spool): seq = try await spool.appendOutbound(message, bounded: bounded)
        case .memory(let memory): seq = try memory.append(message, bounded: bounded)
        }
        doorbell.ring()
        return seq
    }

    /// Waits until message `seq` has been published, at most `timeout`. `false`: still waiting
    /// (the broker is unreachable, or slow).
    public func waitUntilPublished(_ seq: Int64, timeout: Duration) async -> Bool {
        // Two child tasks race: the removal of `seq`, and the timeout. The first to finish
        // decides; the other is cancelled, which resumes a waiter that is still registered.
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.published(seq) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// `true` once `seq` has left the queue; `false` when the waiting task is cancelled first.
    func published(_ seq: Int64) async -> Bool {
        let id = waiters.withLock { $0.nextID() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                waiters.withLock { $0.waiting[id] = (seq, continuation) }
                // Registered first, then checked: a removal before the check is seen by the check,
                // one after it finds the waiter, and so does a cancellation. Whoever takes the
                // waiter out resumes it.
                if !contains(seq) { resume(id, published: true) }
                if Task.isCancelled { resume(id, published: false) }
            }
        } onCancel: {
            resume(id, published: false)
        }
    }

    /// Waits until nothing waits for the broker, or until `deadline`. `true` when empty.
    func waitUntilEmpty(deadline: ContinuousClock.Instant) async -> Bool {
        await removals.wait(until: { self.count == 0 }, deadline: deadline)
    }

    // MARK: storage

    func pending(limit: Int) throws(SpoolError) -> [Spool.OutboundEntry] {
        switch storage {
        case .spool(let spool): try spool.outbound(limit: limit)
        case .memory(let memory): memory.pending(limit: limit)
        }
    }

    func contains(_ seq: Int64) -> Bool {
        switch storage {
        // Unreadable spool: say "still waiting", the cautious answer.
        case .spool(let spool): (try? spool.outboundContains(seq)) ?? true
        case .memory(let memory): memory.contains(seq)
        }
    }

    /// Removes published messages and wakes whoever waits for them.
    func remove(_ entries: [Spool.OutboundEntry]) async throws(SpoolError) {
        switch storage {
        case .spool(let spool): try await spool.removeOutbound(entries)
        case .memory(let memory): memory.remove(entries)
        }
        let seqs = Set(entries.map(\.seq))
        let ids = waiters.withLock { waiters in waiters.waiting.filter { seqs.contains($0.value.seq) }.map(\.key) }
        for id in ids { resume(id, published: true) }
        removals.changed()
    }

    func resume(_ id: Int, published: Bool) {
        waiters.withLock { $0.waiting.removeValue(forKey: id) }?.continuation.resume(returning: published)
    }
}

/// Callers of ``PublishQueue/waitUntilPublished(_:timeout:)``.
struct PublishWaiters {
    var waiting: [Int: (seq: Int64, continuation: CheckedContinuation<Bool, Never>)] = [:]
    private var lastID = 0

    mutating func nextID() -> Int {
        lastID += 1
        return lastID
    }
}

/// The outbound queue without a spool: lost with the process, like everything else then.
final class MemoryOutbound: Sendable {
    struct State {
        var entries: [Spool.OutboundEntry] = []
        var lastSeq: Int64 = 0
        var bytes = 0
    }

    let maxBytes: Int
    let state = Mutex(State())

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    var count: Int { state.withLock { $0.entries.count } }

    func append(_ message: OutboundMessage, bounded: Bool) throws(SpoolError) -> Int64 {
        let size = Spool.size(of: message)
        return try state.withLock { state throws(SpoolError) in
            if bounded && state.bytes + size > maxBytes && !state.entries.isEmpty {
                throw SpoolError(
                    "\(state.entries.count) messages (\(state.bytes) bytes) already wait for the broker, the most spool.maxBytes allows",
                    full: true)
            }
            if message.retain {
                // The newest retained message of a topic supersedes the older ones (see
                // ``OutboundMessage/retain``).
                let older = state.entries.filter { $0.message.retain && $0.message.topic == message.topic }
                state.entries.removeAll { $0.message.retain && $0.message.topic == message.topic }
                state.bytes -= older.reduce(0) { $0 + Spool.size(of: $1.message) }
            }
            state.lastSeq += 1
            state.entries.append(.init(seq: state.lastSeq, message: message))
            state.bytes += size
            return state.lastSeq
        }
    }

    func pending(limit: Int) -> [Spool.OutboundEntry] { state.withLock { Array($0.entries.prefix(limit)) } }

    func contains(_ seq: Int64) -> Bool { state.withLock { $0.entries.contains { $0.seq == seq } } }

    func remove(_ removed: [Spool.OutboundEntry]) {
        let seqs = Set(removed.map(\.seq))
        state.withLock { state in
            // Only what is still here is counted out: a superseded retained message went already.
            let gone = state.entries.filter { seqs.contains($0.seq) }
            state.entries.removeAll { seqs.contains($0.seq) }
            state.bytes -= gone.reduce(0) { $0 + Spool.size(of: $1.message) }
        }
    }
}

/// Wakes the publishing loop: rung when a message is queued; a wait also ends at its timeout.
final class Doorbell: Sendable {
    struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state = Mutex(State())

    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns at once if rung since the last wait, else at the next ring or after `timeout`.
    /// One waiter at a time.
    func wait(timeout: Duration) async {
        let timer = Task { [self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { ring() }
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let rung = state.withLock { state -> Bool in
                    if state.rung {
                        state.rung = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if rung { continuation.resume() }
            }
        } onCancel: {
            ring()
        }
    }
}
