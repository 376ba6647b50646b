/// `application/x-www-form-urlencoded`, both ways: escaping keeps only unreserved characters
/// as they are; decoding turns `+` into a space and `%XX` into bytes, and refuses what is not
/// valid percent-encoding or not UTF-8.
public enum FormEncoding {
    public static func escape(_ text: String) -> String {
        let bytes = [UInt8](unsafeUninitializedCapacity: text.utf8.count * 3) { buffer, count in
            count = write(text, into: buffer, at: 0)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `name=value&…` for parameters in the order given, built in one buffer (once per delivery,
    /// so written straight into memory sized for the worst case: every byte escaped).
    public static func encode(_ parameters: [FormParameter]) -> String {
        let capacity = parameters.reduce(0) { $0 + ($1.name.utf8.count + $1.value.utf8.count) * 3 + 2 }
        let bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            var at = 0
            for (index, parameter) in parameters.enumerated() {
                if index > 0 {
                    buffer[at] = UInt8(ascii: "&")
                    at += 1
                }
                at = write(parameter.name, into: buffer, at: at)
                buffer[at] = UInt8(ascii: "=")
                at = write(parameter.value, into: buffer, at: at + 1)
            }
            count = at
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Decodes a form body or query string into its pairs, in order, repeated names kept.
    /// Empty segments (`a=1&&b=2`) are skipped; a segment without `=` is a name with an empty value.
    public static func decode(_ bytes: some Collection<UInt8>) throws(FormDecodingError) -> [FormParameter] {
        var parameters: [FormParameter] = []
        for segment in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = segment.firstIndex(of: UInt8(ascii: "="))
            let name = try unescape(segment[segment.startIndex..<(equals ?? segment.endIndex)])
            let value =
                try equals.map { equals throws(FormDecodingError) in
                    try unescape(segment[segment.index(after: equals)...])
                } ?? ""
            parameters.append(FormParameter(name: name, value: value))
        }
        return parameters
    }

    private static func unescape(_ bytes: some Collection<UInt8>) throws(FormDecodingError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                out.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw FormDecodingError(reason: "a % is not followed by two hex digits")
                }
                out.append(high << 4 | low)
            default:
                out.append(byte)
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else {
            throw FormDecodingError(reason: "a value is not valid UTF-8")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Writes `text` escaped into `buffer` from `start`, which has room for three bytes per
    /// byte of it; returns where it stopped.
    private static func write(_ text: String, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) -> Int {
        // Native strings are contiguous UTF-8: read them through a pointer (every delivery
        // escapes each of its parameters).
        if let end = text.utf8.withContiguousStorageIfAvailable({ write($0, into: buffer, at: start) }) { return end }
        return write(text.utf8, into: buffer, at: start)
    }

    private static func write(_ bytes: some Sequence<UInt8>, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) -> Int {
        var at = start
        for byte in bytes {
            if isUnreserved(byte) {
                buffer[at] = byte
                at += 1
            } else {
                buffer[at] = UInt8(ascii: "%")
                buffer[at + 1] = hexDigit(byte >> 4)
                buffer[at + 2] = hexDigit(byte & 15)
                at += 3
            }
        }
        return at
    }

    /// RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), kept as they are: one bit test
    /// instead of a chain of range comparisons for each byte of every delivery's query.
    static func isUnreserved(_ byte: UInt8) -> Bool {
        // Bit n of `low` is byte n (0-63): `-` `.` `0-9`; bit n of `high` is byte 64 + n
        // (64-127): `A-Z` `_` `a-z` `~`.
        let low: UInt64 = 0x03FF_6000_0000_0000
        let high: UInt64 = 0x47FF_FFFE_87FF_FFFE
        return byte < 64 ? (low >> UInt64(byte)) & 1 == 1 : byte < 128 && (high >> UInt64(byte - 64)) & 1 == 1
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10 }
}

/// One `name=value` of a form body, decoded.
public struct FormParameter: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

extension [FormParameter] {
    /// The first value of `name`, as web frameworks' `form[name]` gives it.
    public subscript(first name: String) -> String? {
        first { $0.name == name }?.value
    }
}

/// Why a form body could not be decoded.
public struct FormDecodingError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public var description: String { "malformed form body: \(reason)" }
}
