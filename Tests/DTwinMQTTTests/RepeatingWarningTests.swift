import Testing

@testable import DTwinMQTT

/// A broker that stays away is said again and again, further apart each time, never more than
/// a minute apart, and at once again after it came back and went away.
@Suite struct RepeatingWarningTests {
    @Test func warnsAtOnceThenBacksOffToTheMaximum() {
        var warning = RepeatingWarning(first: .seconds(2), maximum: .seconds(8))
        let start = ContinuousClock.now
        // An attempt every half second for 40 s: which ones warn?
        let warned = (0..<80).filter { warning.shouldWarn(now: start + .milliseconds(500 * $0)) }.map { Double($0) / 2 }
        #expect(warned == [0, 2, 6, 14, 22, 30, 38])
        warning.reset()
        let again = warning.shouldWarn(now: start + .seconds(40))
        let soonAfter = warning.shouldWarn(now: start + .seconds(41))
        #expect(again && !soonAfter, "the next outage warns at once, then backs off again")
    }
}
