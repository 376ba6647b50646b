import DequeModule

/// The outbound SMS budget (`twilio.smsPerHour`): at most `perHour` SMS in any sliding hour,
/// for the whole process. SMS cost money, so a slot is taken *before* Twilio is asked and is
/// given back only when Twilio certainly did not send (it refused the request).
///
/// Pure: the caller gives the time, in milliseconds since any fixed origin.
public struct SMSBudget: Sendable {
    public static let window: Int64 = 3_600_000

    public let perHour: Int
    private var taken: Deque<Int64> = []

    public init(perHour: Int) {
        self.perHour = perHour
    }

    /// Takes a slot at `now`; `false` when the last hour's budget is spent.
    public mutating func take(now: Int64) -> Bool {
        forget(before: now)
        guard taken.count < perHour else { return false }
        taken.append(now)
        return true
    }

    /// Gives back the slot taken at `takenAt` (Twilio refused the SMS, so it costs nothing).
    public mutating func giveBack(takenAt: Int64) {
        if let index = taken.lastIndex(of: takenAt) { taken.remove(at: index) }
    }

    /// Slots left at `now`.
    public mutating func remaining(now: Int64) -> Int {
        forget(before: now)
        return perHour - taken.count
    }

    /// When the next slot frees up, if the budget is spent at `now`.
    public mutating func nextSlot(now: Int64) -> Int64? {
        forget(before: now)
        guard taken.count >= perHour, let oldest = taken.first else { return nil }
        return oldest + Self.window
    }

    private mutating func forget(before now: Int64) {
        while let oldest = taken.first, oldest <= now - Self.window { taken.removeFirst() }
    }
}
