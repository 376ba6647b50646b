/// What the bridge makes of the bytes a device published on `<prefix>/<dev>/up` (README: "Topic tree").
///
/// Decoding never fails: anything that is not a reading or an awake event is ``Kind/raw`` and
/// is forwarded byte for byte. ``note`` says why a payload that looked like a reading was not one.
public struct DevicePayload: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Codable {
        case reading, awake, raw
    }

    /// The text forms this came from, for display.
    public enum Format: String, Sendable, Equatable {
        case legacyText = "legacy"
        case json
        case binary
        case text
    }

    public var kind: Kind
    public var format: Format
    /// The reading's value (``Kind/reading`` only).
    public var value: Double?
    /// The device's sequence number, when it sent one.
    public var seq: Int64?
    /// The device's own timestamp in Unix milliseconds, when it sent one.
    public var timestampMillis: Int64?
    public var unit: String?
    /// The device name written inside a legacy payload (`sim-<dev> data …`, `<dev>:awake`).
    public var namedDevice: String?
    /// Why a payload that looked like a reading was forwarded as raw bytes.
    public var note: String?
    /// State the device reported beside a JSON reading (`"led": true`, `"period": 60`,
    /// `"firmware": "dtwin-uno 1.2.0"`): its twin's `reported` keys (``TwinDocument``).
    public var state: [String: JSONValue] = [:]

    public init(
        kind: Kind, format: Format, value: Double? = nil, seq: Int64? = nil, timestampMillis: Int64? = nil,
        unit: String? = nil, namedDevice: String? = nil, note: String? = nil
    ) {
        self.kind = kind
        self.format = format
        self.value = value
        self.seq = seq
        self.timestampMillis = timestampMillis
        self.unit = unit
        self.namedDevice = namedDevice
        self.note = note
    }

    /// Decodes a device payload as the bridge holds it. The same answers as the generic form
    /// (`IntakeQuickPathTests` compares them), without its work in the usual case: printable ASCII
    /// at both ends has no white space to trim, and ASCII is valid UTF-8. The generic form,
    /// called from another module, runs unspecialized: about 5,500 instructions a message of
    /// the original sketch, most of them in `String(validating:)` and the Unicode trimming.
    public static func decode(_ bytes: [UInt8]) -> DevicePayload {
        let quick = bytes.withUnsafeBufferPointer { buffer -> DevicePayload? in
            func printable(_ byte: UInt8) -> Bool { (0x21...0x7E).contains(byte) }
            guard let first = buffer.first, let last = buffer.last, printable(first), printable(last),
                buffer.allSatisfy({ $0 < 0x80 })
            else { return nil }
            if first == UInt8(ascii: "{") { return decodeJSON(Substring(String(decoding: buffer, as: UTF8.self))) }
            return decodeLegacy(buffer) ?? DevicePayload(kind: .raw, format: .text)
        }
        return quick ?? decode(bytes[...])
    }

    /// Decodes a device payload. Pure and total: every input gives an answer.
    public static func decode(_ bytes: some Collection<UInt8>) -> DevicePayload {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return DevicePayload(kind: .raw, format: .binary)
        }
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("{") { return decodeJSON(trimmed) }
        if let legacy = decodeLegacy(trimmed) { return legacy }
        return DevicePayload(kind: .raw, format: .text)
    }

    // MARK: legacy text from the original sketch

    /// `sim-<dev> data <int>` (a reading) and `<dev>:awake` (a boot event).
    ///
    /// Read as UTF-8 bytes, in one pass and without allocating: every device message of the
    /// original sketch comes this way, and splitting it into `Character`s cost more than the
    /// rest of its intake (about 15,000 instructions a message), the standard library's generic
    /// `split` still 8,000. The patterns are ASCII, so the bytes decide what the characters
    /// would.
    static func decodeLegacy(_ text: Substring) -> DevicePayload? {
        var text = text
        return text.withUTF8 { bytes in decodeLegacy(bytes) }
    }

    private static func decodeLegacy(_ bytes: UnsafeBufferPointer<UInt8>) -> DevicePayload? {
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        func spells(_ range: Range<Int>, _ ascii: StaticString) -> Bool {
            range.count == ascii.utf8CodeUnitCount
                && zip(bytes[range], UnsafeBufferPointer(start: ascii.utf8Start, count: ascii.utf8CodeUnitCount)).allSatisfy { $0 == $1 }
        }
        let awake: StaticString = ":awake"
        let nameEnd = bytes.count - awake.utf8CodeUnitCount
        if nameEnd >= 0, spells(nameEnd..<bytes.count, awake) {
            let name = text(0..<nameEnd)
            guard DeviceName(name) != nil || isLegacySimName(name) else { return nil }
            return DevicePayload(kind: .awake, format: .legacyText, namedDevice: name)
        }
        // Exactly three words between spaces: `sim-<dev>`, `data`, the value.
        func word(from start: Int) -> Range<Int>? {
            guard let first = bytes[start...].firstIndex(where: { $0 != UInt8(ascii: " ") }) else { return nil }
            return first..<(bytes[first...].firstIndex(of: UInt8(ascii: " ")) ?? bytes.count)
        }
        guard let sim = word(from: 0), let data = word(from: sim.upperBound), let number = word(from: data.upperBound),
            word(from: number.upperBound) == nil, spells(sim.prefix(4), "sim-"), spells(data, "data")
        else { return nil }
        let name = text(sim.dropFirst(4))
        guard DeviceName(name) != nil else { return nil }
        let valueText = text(number)
        guard let value = Int64(valueText) else {
            return DevicePayload(
                kind: .raw, format: .legacyText, namedDevice: name,
                note: "legacy reading with a value that is not an integer: \(String(valueText.prefix(40)).debugDescription)")
        }
        return DevicePayload(kind: .reading, format: .legacyText, value: Double(value), namedDevice: name)
    }

    /// The original sketch booted as `sim-<id>:awake` as well as `<id>:awake`.
    private static func isLegacySimName(_ name: String) -> Bool {
        name.hasPrefix("sim-") && DeviceName(String(name.dropFirst(4))) != nil
    }

    // MARK: JSON readings

    /// `{"value": <number>, "seq": <int>?, "ts": <unix ms>?, "unit": <string>?}`; other keys are kept
    /// in the forwarded bytes and ignored here.
    static func decodeJSON(_ text: Substring) -> DevicePayload {
        guard let json = JSONValue.parse(text.utf8), case .object(let object) = json else {
            return DevicePayload(kind: .raw, format: .text, note: "starts with { but is not a JSON object")
        }
        func raw(_ note: String) -> DevicePayload { DevicePayload(kind: .raw, format: .json, note: note) }
        guard let rawValue = object["value"] else { return raw("JSON object without a \"value\"") }
        guard let value = rawValue.numberValue, value.isFinite else { return raw("\"value\" is not a number") }
        var payload = DevicePayload(kind: .reading, format: .json, value: value)
        if let seq = object["seq"], !seq.isNull {
            guard let number = seq.numberValue, let int = Int64(exactly: number) else {
                return raw("\"seq\" is not an integer")
            }
            payload.seq = int
        }
        if let ts = object["ts"], !ts.isNull {
            guard let number = ts.numberValue, let int = Int64(exactly: number), int >= 0 else {
                return raw("\"ts\" is not a Unix time in milliseconds")
            }
            payload.timestampMillis = int
        }
        if let unit = object["unit"], !unit.isNull {
            guard let text = unit.stringValue else { return raw("\"unit\" is not a string") }
            payload.unit = text
        }
        // `true`/`false`, or `"on"`/`"off"` as `dtwin simulate --format json` writes it.
        switch object["led"] {
        case .bool(let led)?: payload.state["led"] = .bool(led)
        case .string("on")?: payload.state["led"] = .bool(true)
        case .string("off")?: payload.state["led"] = .bool(false)
        default: break
        }
        if let period = object["period"]?.numberValue, period.isFinite { payload.state["period"] = .number(period) }
        if case .string(let firmware)? = object["firmware"], !firmware.isEmpty, firmware.utf8.count <= 64 {
            payload.state["firmware"] = .string(firmware)
        }
        return payload
    }
}
