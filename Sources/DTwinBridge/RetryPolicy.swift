/// When to try a failed delivery again, and when to give up. Pure: the caller supplies the
/// attempt number, the message's age and a jitter value in `0..<1`.
public struct RetryPolicy: Sendable, Equatable {
    public var initial: Duration
    public var maximum: Duration
    /// A message older than this when a retry is due goes to the dead letter topic instead.
    public var maxAge: Duration

    public init(initial: Duration, maximum: Duration, maxAge: Duration) {
        self.initial = initial
        self.maximum = max(initial, maximum)
        self.maxAge = maxAge
    }

    /// The pause after failed attempt number `attempt` (1-based): exponential from `initial`,
    /// capped at `maximum`, with "equal jitter" (half fixed, half random) so that devices that
    /// failed together do not retry together.
    public func delay(afterAttempt attempt: Int, jitter: Double) -> Duration {
        var ceiling = initial
        var step = 1
        while step < attempt && ceiling < maximum {
            ceiling *= 2
            step += 1
        }
        ceiling = min(ceiling, maximum)
        let clamped = min(max(jitter, 0), 1)
        return ceiling / 2 + (ceiling / 2) * clamped
    }

    public enum Decision: Sendable, Equatable {
        case retry(after: Duration)
        case giveUp
    }

    /// After a retryable failure: wait and retry, or give up because the message is too old.
    public func decide(afterAttempt attempt: Int, age: Duration, jitter: Double) -> Decision {
        let pause = delay(afterAttempt: attempt, jitter: jitter)
        return age + pause > maxAge ? .giveUp : .retry(after: pause)
    }
}
