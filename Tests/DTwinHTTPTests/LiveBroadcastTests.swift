import DTwinBridge
import NIOCore
import Synchronization
import Testing

@testable import DTwinHTTP

/// The dashboards' shared pushes: encoded once, the same bytes to every open page, nothing
/// kept once the last page goes, and a page that stops reading is cut off instead of fed holes.
@Suite struct LiveBroadcastTests {
    final class Encoder: Sendable {
        let calls = Atomic<Int>(0)
        func encode(_ live: LiveEvents, _ cursor: inout LiveBroadcast.PushCursor, _ force: Bool, _ dashboards: Int) -> ByteBuffer? {
            let batch = live.events(after: cursor.events)
            cursor.events = batch.cursor
            guard !batch.events.isEmpty else { return nil }
            calls.add(1, ordering: .relaxed)
            return ByteBuffer(string: "\(batch.events.count) events for \(dashboards)")
        }
    }

    /// What a page received, read on a task of its own; `ended` once its stream finished.
    final class Page: Sendable {
        let pushes = Mutex<[ByteBuffer]>([])
        let ended = Atomic<Bool>(false)

        init(_ stream: AsyncStream<ByteBuffer>) {
            Task {
                for await push in stream { pushes.withLock { $0.append(push) } }
                ended.store(true, ordering: .relaxed)
            }
        }

        var received: [ByteBuffer] { pushes.withLock { $0 } }
    }

    /// Polls `condition` for at most 5 s.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func everyPageGetsTheSamePushEncodedOnce() async throws {
        let live = LiveEvents()
        let encoder = Encoder()
        let broadcast = LiveBroadcast(live: live) { encoder.encode(live, &$0, $1, $2) }
        let (first, a) = broadcast.open()
        let (_, b) = broadcast.open()
        let pageA = Page(a)
        let pageB = Page(b)
        #expect(await eventually { live.watcherCount == 1 }, "one watcher for both pages")
        for n in 0..<5 { live.note(.reading(device: "uno1", value: Double(n), unit: nil, atMillis: 0)) }
        #expect(await eventually { pageA.received.count == 1 && pageB.received.count == 1 })
        #expect(pageA.received == [ByteBuffer(string: "5 events for 2")] && pageB.received == pageA.received)
        #expect(encoder.calls.load(ordering: .relaxed) == 1, "encoded once for both pages")
        broadcast.close(first)
        #expect(await eventually { pageA.ended.load(ordering: .relaxed) }, "a closed page's stream ends")
        #expect(broadcast.dashboards == 1)
        broadcast.closeAll()
        #expect(await eventually { pageB.ended.load(ordering: .relaxed) })
        #expect(await eventually { live.watcherCount == 0 }, "with no page open nothing is kept")
    }

    @Test func aPageThatStopsReadingIsCutOff() async throws {
        let live = LiveEvents()
        let encoder = Encoder()
        let broadcast = LiveBroadcast(live: live) { encoder.encode(live, &$0, $1, $2) }
        let (_, stalled) = broadcast.open()
        // More pushes than a page may have waiting: one event before each push.
        for _ in 0..<12 {
            live.note(.status(device: "uno1", status: "online", atMillis: 0))
            try await Task.sleep(for: Dashboard.pushInterval + .milliseconds(60))
            if broadcast.dashboards == 0 { break }
        }
        #expect(broadcast.dashboards == 0, "cut off after its buffer filled")
        let page = Page(stalled)
        #expect(await eventually { page.ended.load(ordering: .relaxed) })
        #expect(page.received.count <= 8, "what waited for it, then the end")
    }
}
