/// The bridge's id for one device message: a ULID (26 characters of Crockford base32, 48 bits of
/// Unix milliseconds then 80 random bits). Ids sort by arrival time, which keeps the twin table's
/// natural order readable, and are assigned once on arrival so they stay the same across retries.
public struct MessageID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }

    /// Makes an id from a time and a random source (both given, so this stays pure and testable).
    public init(millis: Int64, using generator: inout some RandomNumberGenerator) {
        // Two 64-bit draws, not ten byte draws: the system generator costs a syscall per draw.
        self.init(millis: millis, random: RandomBits(high: UInt16(truncatingIfNeeded: generator.next()), low: generator.next()))
    }

    /// The 80 bits after the time.
    struct RandomBits: Sendable, Equatable {
        var high: UInt16
        var low: UInt64

        /// The next value, for a second id in the same millisecond (wraps at 2^80, which a
        /// millisecond never reaches).
        var successor: RandomBits {
            let (low, overflow) = low.addingReportingOverflow(1)
            return RandomBits(high: overflow ? high &+ 1 : high, low: low)
        }
    }

    init(millis: Int64, random: RandomBits) {
        let time = UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF
        self.rawValue = Self.crockford(high: time << 16 | UInt64(random.high), low: random.low)
    }

    public var description: String { rawValue }
    public static func < (lhs: MessageID, rhs: MessageID) -> Bool { lhs.rawValue < rhs.rawValue }

    private static let alphabet: StaticString = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    /// 128 bits (`high` then `low`) as 26 base32 digits, most significant first (the first digit
    /// carries 3 bits), written straight into the string's storage: every device message gets
    /// an id, and building it from arrays cost 2,500 instructions (the generic `String(decoding:)`
    /// casts its argument at run time).
    private static func crockford(high: UInt64, low: UInt64) -> String {
        var (high, low) = (high, low)
        return String(unsafeUninitializedCapacity: 26) { out in
            for position in (0..<26).reversed() {
                out[position] = alphabet.utf8Start[Int(low & 31)]
                low = low >> 5 | (high & 31) << 59
                high >>= 5
            }
            return 26
        }
    }
}

/// The bridge's ids, strictly increasing in the order they are made: a second id in the same
/// millisecond (or after the clock stepped back) is the previous one plus one, as ULID's
/// monotonic mode does. Items stored in the same millisecond then keep their arrival order in
/// the twin table, which orders by time and then by id.
public struct MonotonicMessageIDs: Sendable {
    private var generator: SplitMix64
    private var last: (millis: Int64, random: MessageID.RandomBits)?

    public init(generator: SplitMix64 = SplitMix64()) { self.generator = generator }

    public mutating func next(millis: Int64) -> MessageID {
        let millis = max(0, millis) & 0xFFFF_FFFF_FFFF
        if let last, millis <= last.millis {
            let random = last.random.successor
            self.last = (last.millis, random)
            return MessageID(millis: last.millis, random: random)
        }
        let random = MessageID.RandomBits(high: UInt16(truncatingIfNeeded: generator.next()), low: generator.next())
        last = (millis, random)
        return MessageID(millis: millis, random: random)
    }
}

/// A small, fast, seedable generator (SplitMix64) for message ids. Seed it once from the system
/// generator; it is not for secrets.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
