import DTwinBridge
import NIOCore
import Synchronization

/// One push for every open dashboard: a single task reads what happened (``LiveEvents``) every
/// ``Dashboard/pushInterval``, encodes it once, and hands the same bytes to each open stream, so
/// the bridge's cost grows with the events, not with the number of pages watching. It runs only
/// while a stream is open.
///
/// A page that cannot keep up (eight pushes waiting for it) is cut off rather than fed a
/// stream with holes; its browser reconnects, and the page loads everything again.
final class LiveBroadcast: Sendable {
    private struct State {
        var streams: [Int: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextID = 0
        var running = false
    }

    private let state = Mutex(State())
    let live: LiveEvents
    let encode: @Sendable (inout PushCursor, Bool, Int) -> ByteBuffer?

    /// Where the broadcast has read to, and what it last saw, for the next push's rate.
    struct PushCursor: Sendable {
        var events: Int64
        var received: Int
        var at: ContinuousClock.Instant
    }

    init(live: LiveEvents, encode: @escaping @Sendable (inout PushCursor, _ force: Bool, _ dashboards: Int) -> ByteBuffer?) {
        self.live = live
        self.encode = encode
    }

    var dashboards: Int { state.withLock { $0.streams.count } }

    /// A new open page: its stream of pushes, and the id that ends it.
    func open() -> (id: Int, pushes: AsyncStream<ByteBuffer>) {
        let (pushes, continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .bufferingNewest(8))
        let (id, start) = state.withLock { state -> (Int, Bool) in
            state.nextID += 1
            state.streams[state.nextID] = continuation
            defer { state.running = true }
            return (state.nextID, !state.running)
        }
        continuation.onTermination = { [weak self] _ in self?.close(id) }
        if start { Task { await run() } }
        return (id, pushes)
    }

    func close(_ id: Int) {
        state.withLock { $0.streams.removeValue(forKey: id) }?.finish()
    }

    /// Every open stream ends (the bridge stops).
    func closeAll() {
        for continuation in state.withLock({ state in
            defer { state.streams.removeAll() }
            return Array(state.streams.values)
        }) {
            continuation.finish()
        }
    }

    private func run() async {
        var cursor = PushCursor(events: live.watch(), received: 0, at: .now)
        defer { live.unwatch() }
        _ = encode(&cursor, true, 0)  // the starting point: counters and time
        while true {
            try? await Task.sleep(for: Dashboard.pushInterval)
            let streams = state.withLock { state -> [Int: AsyncStream<ByteBuffer>.Continuation]? in
                if state.streams.isEmpty {
                    state.running = false
                    return nil
                }
                return state.streams
            }
            guard let streams else { return }
            let force = ContinuousClock.now - cursor.at >= Dashboard.healthInterval
            guard let push = encode(&cursor, force, streams.count) else { continue }
            for (id, continuation) in streams {
                if case .dropped = continuation.yield(push) { close(id) }
            }
        }
    }
}
