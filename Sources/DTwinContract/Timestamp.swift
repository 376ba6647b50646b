/// ISO-8601 UTC timestamps with milliseconds (`2026-11-24T12:34:56.789Z`), formatted and parsed by
/// hand: the bridge formats one per message, and Foundation's formatters are slow and not Sendable.
public enum Timestamp {
    /// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func iso8601(millis: Int64) -> String {
        let (days, msOfDay) = floorDivide(millis, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let hour = msOfDay / 3_600_000
        let minute = msOfDay / 60_000 % 60
        let second = msOfDay / 1000 % 60
        let ms = msOfDay % 1000
        guard (0...9999).contains(year) else {
            return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(ms, 3))Z"
        }
        // Written digit by digit into the string's own 24 bytes: interpolating padded pieces cost
        // about 8,700 instructions, 4% of a delivery.
        return String(unsafeUninitializedCapacity: 24) { text in
            func digits(_ value: Int64, _ width: Int, at start: Int) {
                var rest = value
                for index in stride(from: start + width - 1, through: start, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            digits(year, 4, at: 0)
            digits(month, 2, at: 5)
            digits(day, 2, at: 8)
            digits(hour, 2, at: 11)
            digits(minute, 2, at: 14)
            digits(second, 2, at: 17)
            digits(ms, 3, at: 20)
            (text[4], text[7], text[10], text[13], text[16], text[19], text[23]) = (
                UInt8(ascii: "-"), UInt8(ascii: "-"), UInt8(ascii: "T"), UInt8(ascii: ":"), UInt8(ascii: ":"), UInt8(ascii: "."), UInt8(ascii: "Z")
            )
            return 24
        }
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z`, `±HH:MM` or no zone (UTC), or Unix milliseconds
    /// given as digits. Returns Unix milliseconds, or `nil` when the text is none of these.
    public static func parseMillis(_ text: String) -> Int64? {
        if !text.isEmpty, text.allSatisfy(\.isASCIIDigit) { return Int64(text) }
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.number(digits: 4), scanner.skip("-"),
            let month = scanner.number(digits: 2), scanner.skip("-"),
            let day = scanner.number(digits: 2),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var millis = days(fromYear: year, month: month, day: day) * 86_400_000
        if scanner.atEnd { return millis }
        guard scanner.skip("T") || scanner.skip(" "),
            let hour = scanner.number(digits: 2), scanner.skip(":"),
            let minute = scanner.number(digits: 2), hour < 24, minute < 60
        else { return nil }
        var second: Int64 = 0
        var fraction: Int64 = 0
        if scanner.skip(":") {
            guard let s = scanner.number(digits: 2), s < 60 else { return nil }
            second = s
            if scanner.skip(".") {
                guard let (digits, count) = scanner.digitRun(), count > 0 else { return nil }
                // Keep milliseconds; a longer fraction is truncated, a shorter one scaled up.
                fraction = count >= 3 ? digits / pow10(count - 3) : digits * pow10(3 - count)
            }
        }
        millis += ((hour * 60 + minute) * 60 + second) * 1000 + fraction
        // No zone at all is taken as UTC, like the rest of dtwin's times.
        if scanner.atEnd { return millis }
        if scanner.skip("Z") || scanner.skip("z") { return scanner.atEnd ? millis : nil }
        let sign: Int64
        if scanner.skip("+") { sign = 1 } else if scanner.skip("-") { sign = -1 } else { return nil }
        guard let offsetHours = scanner.number(digits: 2) else { return nil }
        _ = scanner.skip(":")
        guard let offsetMinutes = scanner.number(digits: 2), scanner.atEnd else { return nil }
        return millis - sign * (offsetHours * 60 + offsetMinutes) * 60_000
    }

    // MARK: calendar arithmetic (Howard Hinnant's days-from-civil algorithms)

    static func days(fromYear year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b
        let r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    private static func pow10(_ n: Int) -> Int64 { (0..<n).reduce(1) { acc, _ in acc * 10 } }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Character) -> Bool {
            guard index < bytes.count, let ascii = character.asciiValue, bytes[index] == ascii else { return false }
            index += 1
            return true
        }

        mutating func number(digits: Int) -> Int64? {
            guard index + digits <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<index + digits] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            index += digits
            return value
        }

        mutating func digitRun() -> (Int64, Int)? {
            var value: Int64 = 0
            var count = 0
            while index < bytes.count, (48...57).contains(bytes[index]), count < 18 {
                value = value * 10 + Int64(bytes[index] - 48)
                count += 1
                index += 1
            }
            while index < bytes.count, (48...57).contains(bytes[index]) { index += 1 }  // beyond 18 digits
            return (value, count)
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
