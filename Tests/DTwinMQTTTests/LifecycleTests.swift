import Testing

@testable import DTwinMQTT

/// The client's lifecycle only moves forward, and says at each step what may happen.
@Suite struct LifecycleTests {
    typealias Lifecycle = MQTTClient.Lifecycle
    let later = ContinuousClock.now + .seconds(2)

    @Test func aClientStartsOnceConnectsAndStops() {
        var lifecycle = Lifecycle.created
        #expect(!lifecycle.hasStarted && !lifecycle.isConnected && !lifecycle.isStopping)
        let first = lifecycle.start()
        let second = lifecycle.start()
        #expect(first && !second)  // a second start does nothing
        lifecycle.setConnected(true)
        #expect(lifecycle == .running(connected: true) && lifecycle.isConnected)
        #expect(!lifecycle.threadShouldEnd(now: .now))
        let before = lifecycle.stop(deadline: later)
        #expect(before.wasConnected && before.wasStarted)
        #expect(lifecycle.isStopping && lifecycle.isConnected)
        // Still connected and in time: the DISCONNECT may still go out.
        #expect(!lifecycle.threadShouldEnd(now: .now))
        #expect(lifecycle.threadShouldEnd(now: later))
        lifecycle.setConnected(false)
        #expect(lifecycle.threadShouldEnd(now: .now))
    }

    @Test func closingBeforeStartingClosesAtOnce() {
        var lifecycle = Lifecycle.created
        let before = lifecycle.stop(deadline: later)
        #expect(!before.wasStarted && !before.wasConnected)
        #expect(lifecycle == .closed)
        let started = lifecycle.start()
        #expect(!started)  // a closed client never starts
        lifecycle.setConnected(true)
        #expect(lifecycle == .closed && !lifecycle.isConnected)
    }

    @Test func stoppingTwiceKeepsTheFirstDeadline() {
        var lifecycle = Lifecycle.running(connected: true)
        _ = lifecycle.stop(deadline: later)
        _ = lifecycle.stop(deadline: later + .seconds(60))
        #expect(lifecycle == .stopping(deadline: later, connected: true))
    }
}
