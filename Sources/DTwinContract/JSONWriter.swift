/// JSON text written straight into bytes, object keys in sorted order, so that equal values are
/// equal bytes. For the twin documents (``TwinDocument/json(withDelta:)``): Foundation's
/// `JSONEncoder` took about 118,000 instructions to encode one, and every stored twin change
/// encoded it twice (callgrind, issue 22).
///
/// What it writes is what `JSONEncoder` means, in fewer bytes: `/` is not escaped, a whole number
/// has no fraction (`723`, as `JSONEncoder` writes it too), others take Swift's shortest form
/// that reads back to the same `Double` (`21.5`, `1e-07`).
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: ascii("null")
        case .bool(let flag): ascii(flag ? "true" : "false")
        case .number(let number): write(number)
        case .string(let text): write(text)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members): write(members) { $0.write($1) }
        }
    }

    /// An object of `members` in key order, each value written by `value`.
    mutating func write<Value>(_ members: [String: Value], value: (inout JSONWriter, Value) -> Void) {
        object { object in
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                object.key(key)
                value(&object, member)
            }
        }
    }

    /// An object whose members `body` writes, each a ``key(_:)`` and then its value.
    mutating func object(_ body: (inout JSONWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        body(&self)
        bytes.append(UInt8(ascii: "}"))
    }

    /// A member's key, after a comma unless it is the object's first (no value ends in `{`).
    mutating func key(_ name: String) {
        if bytes.last != UInt8(ascii: "{") { bytes.append(UInt8(ascii: ",")) }
        write(name)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func write(_ integer: Int64) { ascii(String(integer)) }

    /// A finite number; JSON has no NaN or infinity, so those are `null`.
    mutating func write(_ number: Double) {
        guard number.isFinite else { return ascii("null") }
        if number.rounded() == number, abs(number) < 1e15 { return write(Int64(number)) }
        ascii(number.description)
    }

    mutating func write(_ flag: Bool) { ascii(flag ? "true" : "false") }

    /// A string, quoted: `"` and `\` escaped, control characters as JSON's escapes.
    mutating func write(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): ascii("\\\"")
            case UInt8(ascii: "\\"): ascii("\\\\")
            case 0x0A: ascii("\\n")
            case 0x0D: ascii("\\r")
            case 0x09: ascii("\\t")
            case 0x08: ascii("\\b")
            case 0x0C: ascii("\\f")
            case 0..<0x20:
                ascii("\\u00")
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func ascii(_ text: String) { bytes.append(contentsOf: text.utf8) }

    private static let hex = Array("0123456789abcdef".utf8)
}
