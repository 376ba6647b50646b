import Foundation
import Testing

@testable import DTwinContract

@Suite struct TimestampTests {
    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"), (Int64(1_700_000_000_123), "2023-11-14T22:13:20.123Z"),
        (Int64(951_782_400_000), "2000-02-29T00:00:00.000Z"), (Int64(-1), "1969-12-31T23:59:59.999Z"),
        (Int64(253_402_300_799_999), "9999-12-31T23:59:59.999Z"),
    ])
    func formats(_ millis: Int64, _ text: String) {
        #expect(Timestamp.iso8601(millis: millis) == text)
        #expect(Timestamp.parseMillis(text) == millis)
    }

    @Test func agreesWithFoundationOnManyInstants() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let millis = Int64(generator.next() % 4_102_444_800_000)  // 1970 ... 2100
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
            #expect(Timestamp.iso8601(millis: millis) == expected)
        }
    }

    @Test(arguments: [
        ("2026-11-24", Int64(1_795_478_400_000)), ("2026-11-24T01:02", Int64(1_795_482_120_000)),
        ("2026-11-24T01:02:03Z", Int64(1_795_482_123_000)), ("2026-11-24T01:02:03.5Z", Int64(1_795_482_123_500)),
        ("2026-11-24T01:02:03.123456Z", Int64(1_795_482_123_123)), ("2026-11-24T03:02:03+02:00", Int64(1_795_482_123_000)),
        ("2026-11-23T23:02:03-0200", Int64(1_795_482_123_000)), ("1700000000123", Int64(1_700_000_000_123)),
    ])
    func parsesCommonForms(_ text: String, _ millis: Int64) {
        #expect(Timestamp.parseMillis(text) == millis)
    }

    @Test(arguments: ["", "yesterday", "2026-13-01", "2026-02-30", "2026-11-24T25:00", "2026-11-24T01:02:03+", "2026-11-24T01:02:03Zjunk", "-5"])
    func rejectsOtherText(_ text: String) {
        #expect(Timestamp.parseMillis(text) == nil)
    }
}

@Suite struct MessageIDTests {
    @Test func encodesTheTimeLikeTheULIDSpecExample() {
        // The ULID specification's example: 01ARYZ6S41TSV4RRFFQ69G5FAV has time 1469918176385.
        var generator = SplitMix64(seed: 1)
        let id = MessageID(millis: 1_469_918_176_385, using: &generator)
        #expect(id.rawValue.count == 26)
        #expect(id.rawValue.hasPrefix("01ARYZ6S41"))
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        #expect(id.rawValue.allSatisfy { alphabet.contains($0) })
        // All 128 bits: the example's random part, TSV4RRFFQ69G5FAV, is these 80.
        let random = MessageID.RandomBits(high: 54_902, low: 0x4C61_EFB9_9302_BD5B)
        #expect(MessageID(millis: 1_469_918_176_385, random: random).rawValue == "01ARYZ6S41TSV4RRFFQ69G5FAV")
        #expect(MessageID(millis: 0, random: .init(high: 0, low: 0)).rawValue == String(repeating: "0", count: 26))
        #expect(MessageID(millis: .max, random: .init(high: .max, low: .max)).rawValue == "7" + String(repeating: "Z", count: 25))
    }

    @Test func idsSortByTimeAndDoNotRepeat() {
        var generator = SplitMix64(seed: 99)
        var seen = Set<String>()
        var previous: MessageID?
        for step in 0..<5000 {
            let id = MessageID(millis: 1_700_000_000_000 + Int64(step), using: &generator)
            #expect(seen.insert(id.rawValue).inserted)
            if let previous { #expect(previous < id) }
            previous = id
        }
    }

    /// ULID's monotonic mode: within a millisecond (or when the clock steps back) each id is
    /// the previous one plus one, so ids keep the order they were made in.
    @Test func idsOfOneMillisecondIncreaseInTheOrderTheyAreMade() {
        var ids = MonotonicMessageIDs(generator: SplitMix64(seed: 3))
        let millis: Int64 = 1_700_000_000_000
        let sameMillisecond = (0..<1000).map { _ in ids.next(millis: millis) }
        #expect(sameMillisecond == sameMillisecond.sorted() && Set(sameMillisecond).count == 1000)
        #expect(sameMillisecond.allSatisfy { $0.rawValue.prefix(10) == sameMillisecond[0].rawValue.prefix(10) }, "one time part")
        let steppedBack = ids.next(millis: millis - 5000)
        #expect(steppedBack > sameMillisecond.last!)
        let later = ids.next(millis: millis + 1)
        #expect(later > steppedBack && later.rawValue.prefix(10) != steppedBack.rawValue.prefix(10))
        // The carry out of the low 64 bits reaches the high 16 (the 80 bits count as one number).
        let full = MessageID.RandomBits(high: 7, low: .max)
        #expect(full.successor == MessageID.RandomBits(high: 8, low: 0))
        #expect(MessageID(millis: millis, random: full) < MessageID(millis: millis, random: full.successor))
    }

    @Test func aSeedGivesTheSameIDs() {
        var first = SplitMix64(seed: 5)
        var second = SplitMix64(seed: 5)
        #expect(MessageID(millis: 1, using: &first) == MessageID(millis: 1, using: &second))
    }
}
