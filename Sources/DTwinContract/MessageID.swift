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
        var bytes = [UInt8](repeating: 0, count: 16)
        let time = UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: time >> (8 * (5 - i))) }
        for i in 0..<2 { bytes[6 + i] = UInt8(truncatingIfNeeded: random.high >> (8 * (1 - i))) }
        for i in 0..<8 { bytes[8 + i] = UInt8(truncatingIfNeeded: random.low >> (8 * (7 - i))) }
        self.rawValue = Self.crockford(bytes)
    }

    public var description: String { rawValue }
    public static func < (lhs: MessageID, rhs: MessageID) -> Bool { lhs.rawValue < rhs.rawValue }

    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    /// 128 bits as 26 base32 digits, most significant first (the first digit carries 3 bits).
    private static func crockford(_ bytes: [UInt8]) -> String {
        var high = UInt64(0)
        var low = UInt64(0)
        for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
        var out = [UInt8](repeating: 0, count: 26)
        for position in (0..<26).reversed() {
            out[position] = alphabet[Int(low & 31)]
            low = low >> 5 | (high & 31) << 59
            high >>= 5
        }
        return String(decoding: out, as: UTF8.self)
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
