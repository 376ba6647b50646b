import DTwinConfig
import DTwinContract
import Testing

@testable import DTwinBridge

struct AlertStateTests {
    static let a = DeviceName("a")!
    static let b = DeviceName("b")!

    static func rule(device: String = "*", below: Double? = nil, above: Double? = nil, cooldown: Duration = .seconds(60))
        -> DTwinConfiguration.AlertRule
    {
        var rule = DTwinConfiguration.AlertRule()
        rule.device = device
        rule.below = below
        rule.above = above
        rule.text = "{device}: {value}"
        rule.cooldown = cooldown
        return rule
    }

    func evaluate(_ state: inout AlertState, _ device: DeviceName, _ value: Double, at now: Int64) -> [String] {
        state.evaluate(device: device, value: value, now: now)
    }

    @Test func firesBelowAndAboveOncePerCooldownPerDevice() {
        var state = AlertState(rules: [Self.rule(below: 100), Self.rule(above: 900)])
        let texts = [
            evaluate(&state, Self.a, 80, at: 0),  // below: fires
            evaluate(&state, Self.a, 70, at: 30_000),  // inside a's cooldown
            evaluate(&state, Self.b, 60, at: 30_000),  // b has its own cooldown
            evaluate(&state, Self.a, 950, at: 31_000),  // the other rule has its own cooldown
            evaluate(&state, Self.a, 500, at: 61_000),  // in range: nothing
            evaluate(&state, Self.a, 50.5, at: 61_000),  // cooldown over: fires again
        ]
        #expect(texts == [["a: 80"], [], ["b: 60"], ["a: 950"], [], ["a: 50.5"]])
    }

    @Test func aRuleForOneDeviceIgnoresTheOthers() {
        var state = AlertState(rules: [Self.rule(device: "b", below: 100)])
        let texts = [evaluate(&state, Self.a, 1, at: 0), evaluate(&state, Self.b, 1, at: 0)]
        #expect(texts == [[], ["b: 1"]])
    }

    @Test func thresholdsAreStrict() {
        var state = AlertState(rules: [Self.rule(below: 100, above: 200)])
        let texts = [evaluate(&state, Self.a, 100, at: 0), evaluate(&state, Self.a, 200, at: 0)]
        #expect(texts == [[], []])
    }
}
