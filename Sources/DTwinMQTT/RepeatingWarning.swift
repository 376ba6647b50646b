/// When to repeat a warning about a condition that lasts (a broker that cannot be reached):
/// the first time, then again after 2 s, 4 s, 8 s, … and at most `maximum` apart. A person
/// watching the log sees it is still happening; a gateway left alone for a week does not fill
/// its disk.
struct RepeatingWarning {
    let first: Duration
    let maximum: Duration
    private var interval: Duration
    private var next: ContinuousClock.Instant?

    init(first: Duration = .seconds(2), maximum: Duration = .seconds(60)) {
        self.first = first
        self.maximum = maximum
        self.interval = first
    }

    /// Whether to warn now; if so, the next warning waits twice as long as this one did.
    mutating func shouldWarn(now: ContinuousClock.Instant) -> Bool {
        if let next, now < next { return false }
        next = now + interval
        interval = min(interval * 2, maximum)
        return true
    }

    /// The condition ended: the next occurrence warns at once.
    mutating func reset() {
        next = nil
        interval = first
    }
}
