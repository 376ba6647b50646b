import DTwinContract
import Testing

@testable import DTwinBridge

/// The live views' event buffer: nothing kept without a watcher, everything after a cursor with
/// one, and a watcher that fell behind the buffer is told so.
@Suite struct LiveEventsTests {
    func reading(_ n: Int) -> LiveEvents.Event { .reading(device: "uno1", value: Double(n), unit: nil, atMillis: Int64(n)) }

    @Test func nothingIsKeptWhileNobodyWatches() {
        let live = LiveEvents()
        var made = 0
        live.note(
            {
                made += 1
                return reading(1)
            }())
        #expect(made == 0, "the event is not even made")
        let cursor = live.watch()
        live.note(reading(2))
        #expect(live.events(after: cursor).events == [reading(2)])
        live.unwatch()
        live.note(reading(3))
        #expect(live.events(after: cursor).events == [reading(2)])
    }

    @Test func eachWatcherReadsFromItsOwnCursor() {
        let live = LiveEvents()
        let first = live.watch()
        live.note(reading(1))
        let second = live.watch()
        live.note(reading(2))
        let batch = live.events(after: first)
        #expect(batch.events == [reading(1), reading(2)] && !batch.missed)
        #expect(live.events(after: second).events == [reading(2)])
        #expect(live.events(after: batch.cursor).events.isEmpty)
        #expect(live.watcherCount == 2)
    }

    @Test func aWatcherThatFellBehindIsToldSo() {
        let live = LiveEvents()
        let cursor = live.watch()
        for n in 0..<(LiveEvents.capacity + 10) { live.note(reading(n)) }
        let batch = live.events(after: cursor)
        #expect(batch.missed && batch.events.count == LiveEvents.capacity)
        #expect(batch.events.first == reading(10) && batch.events.last == reading(LiveEvents.capacity + 9))
    }

    @Test func theLatestDeadLettersAreKeptWithoutAWatcher() {
        let live = LiveEvents()
        for n in 0..<(LiveEvents.recentDeadLetterCount + 5) {
            live.noteDeadLetter(DeadLetter(topic: "dtwin/x/up", payload: [UInt8(n % 256)], reason: "reason \(n)"))
        }
        let recent = live.recentDeadLetters
        #expect(recent.count == LiveEvents.recentDeadLetterCount)
        #expect(recent.first?.reason == "reason \(LiveEvents.recentDeadLetterCount + 4)" && recent.last?.reason == "reason 5")
    }
}
