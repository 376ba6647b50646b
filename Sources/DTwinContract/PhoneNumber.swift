/// A phone number as Twilio writes it (E.164: `+` and digits). Numbers from the configuration
/// may be written with spaces, dashes, dots or parentheses; they compare equal to Twilio's form.
/// The one rule for a phone number everywhere: the configuration, `dtwin sms --to`, webhooks.
public struct PhoneNumber: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: String

    /// `nil` unless `text` is `+` followed by 7 to 15 digits, after removing separators.
    public init?(_ text: String) {
        let kept = text.filter { !" -.()\u{a0}".contains($0) }
        guard kept.first == "+", (8...16).contains(kept.count), kept.dropFirst().allSatisfy({ ("0"..."9").contains($0) }) else {
            return nil
        }
        rawValue = kept
    }

    public var description: String { rawValue }

    /// The number with all but its last 4 digits hidden, for logs.
    public var masked: String { String(repeating: "*", count: rawValue.count - 4) + rawValue.suffix(4) }

    public static func < (lhs: PhoneNumber, rhs: PhoneNumber) -> Bool { lhs.rawValue < rhs.rawValue }
}
