import DTwinContract
import Testing

@Suite struct DevicePayloadTests {
    func decode(_ text: String) -> DevicePayload { DevicePayload.decode(Array(text.utf8)) }

    @Test func legacyReading() {
        let payload = decode("sim-uno1 data 512")
        #expect(payload.kind == .reading)
        #expect(payload.format == .legacyText)
        #expect(payload.value == 512)
        #expect(payload.namedDevice == "uno1")
    }

    @Test func legacyReadingToleratesATrailingNewline() {
        #expect(decode("sim-uno1 data 17\r\n").value == 17)
    }

    @Test func legacyReadingWithANonIntegerIsRawWithANote() {
        let payload = decode("sim-uno1 data lots")
        #expect(payload.kind == .raw)
        #expect(payload.note?.contains("not an integer") == true)
    }

    /// The legacy patterns' edges, read byte by byte: words between runs of spaces (only
    /// spaces), exactly three of them, names as `DeviceName` takes them, values as `Int64`.
    @Test(arguments: [
        ("sim-uno1   data    -42", DevicePayload.Kind.reading, -42.0 as Double?, "uno1" as String?),
        ("sim-uno1 data +7", .reading, 7, "uno1"),
        ("sim-esp-3 data 9223372036854775807", .reading, 9_223_372_036_854_775_807, "esp-3"),
        ("sim-uno1 data 9223372036854775808", .raw, nil, "uno1"),
        ("sim-uno1 data 5 extra", .raw, nil, nil),
        ("sim-uno1 data", .raw, nil, nil),
        ("sim-uno1\tdata 5", .raw, nil, nil),
        ("sim- data 5", .raw, nil, nil),
        ("sim data 5", .raw, nil, nil),
        ("sim-uno1 Data 5", .raw, nil, nil),
        ("sim-uno1 datum 5", .raw, nil, nil),
        ("sim-bad/name data 5", .raw, nil, nil),
        ("sim-uno1 data 5é", .raw, nil, "uno1"),
        ("uno1:awake", .awake, nil, "uno1"),
        ("sim-uno1:awake", .awake, nil, "sim-uno1"),
        (":awake", .raw, nil, nil),
        ("bad/name:awake", .raw, nil, nil),
        ("awake", .raw, nil, nil),
    ])
    func legacyEdges(_ text: String, kind: DevicePayload.Kind, value: Double?, named: String?) {
        let payload = decode(text)
        #expect(payload.kind == kind)
        #expect(payload.value == value)
        #expect(payload.namedDevice == named)
        #expect(payload.format == (named == nil ? .text : .legacyText))
    }

    @Test(arguments: ["uno1:awake", "sim-uno1:awake"])
    func awake(_ text: String) {
        let payload = decode(text)
        #expect(payload.kind == .awake)
        #expect(payload.value == nil)
    }

    /// A JSON reading may carry the device's state: its twin's reported `led`, `period` and `firmware`.
    @Test func jsonReadingCarriesTheDevicesState() {
        #expect(decode(#"{"value": 512, "led": true, "period": 60}"#).state == ["led": .bool(true), "period": .number(60)])
        #expect(decode(#"{"value": 512, "seq": 3, "led": "off"}"#).state == ["led": .bool(false)], "as dtwin simulate writes it")
        #expect(decode(#"{"value": 512, "led": "dim", "period": "soon"}"#).state.isEmpty, "anything else is not state")
        #expect(decode(#"{"value":512,"led":false,"period":60,"firmware":"dtwin-uno 1.2"}"#).state["firmware"] == .string("dtwin-uno 1.2"))
        #expect(decode(#"{"value": 1, "firmware": ""}"#).state.isEmpty && decode(#"{"value": 1, "firmware": 12}"#).state.isEmpty)
        #expect(decode(#"{"value": 1, "firmware": "\#(String(repeating: "x", count: 65))"}"#).state.isEmpty, "at most 64 bytes")
        #expect(decode("sim-uno1 data 512").state.isEmpty)
    }

    @Test func jsonReadingWithEveryField() {
        let payload = decode(#"{"value": 3.25, "seq": 42, "ts": 1700000000123, "unit": "lux", "extra": [1]}"#)
        #expect(payload.kind == .reading)
        #expect(payload.format == .json)
        #expect(payload.value == 3.25)
        #expect(payload.seq == 42)
        #expect(payload.timestampMillis == 1_700_000_000_123)
        #expect(payload.unit == "lux")
    }

    @Test func jsonReadingWithOnlyAValue() {
        let payload = decode(#"{"value": -7}"#)
        #expect(payload.kind == .reading)
        #expect(payload.value == -7)
        #expect(payload.seq == nil)
    }

    @Test(arguments: [
        (#"{"value": true}"#, "not a number"), (#"{"value": "12"}"#, "not a number"),
        (#"{"value": null}"#, "not a number"), (#"{"temp": 3}"#, "without a \"value\""),
        (#"{"value": 1, "seq": 1.5}"#, "seq"), (#"{"value": 1, "seq": "1"}"#, "seq"),
        (#"{"value": 1, "ts": -5}"#, "ts"), (#"{"value": 1, "unit": 5}"#, "unit"),
        (#"{"value": 1"#, "not a JSON object"), ("[1, 2]", ""),
    ])
    func malformedJSONIsForwardedRawWithAReason(_ text: String, _ reason: String) {
        let payload = decode(text)
        #expect(payload.kind == .raw)
        if !reason.isEmpty { #expect(payload.note?.contains(reason) == true, "\(payload.note ?? "no note")") }
    }

    @Test func unicodeWhiteSpaceAroundAPayloadIsIgnored() {
        // Tab, no-break space, line separator, ideographic space: what Foundation's
        // .whitespacesAndNewlines holds, and what a serial console may add.
        #expect(decode("\t\u{00A0}sim-uno1 data 5\u{2028}\u{3000}\n").value == 5)
        #expect(decode(" \u{0085}{\"value\": 2}\r\n").value == 2)
        #expect(decode(" \u{00A0} ").kind == .raw)
    }

    @Test func trimmingWhitespaceKeepsInnerSpaceAndNonSpaceScalars() {
        #expect(" a b ".trimmingWhitespace() == "a b")
        #expect("\u{200B}x\u{200B}".trimmingWhitespace() == "\u{200B}x\u{200B}")  // zero-width space is not white space
        #expect("   ".trimmingWhitespace() == "")
        #expect("".trimmingWhitespace() == "")
        #expect("é\n".trimmingWhitespace() == "é")
    }

    @Test func binaryIsRaw() {
        let payload = DevicePayload.decode([0xFF, 0xFE, 0x00, 0x80])
        #expect(payload.kind == .raw)
        #expect(payload.format == .binary)
    }

    @Test func otherTextIsRaw() {
        #expect(decode("hello").kind == .raw)
        #expect(decode("").kind == .raw)
        #expect(decode("sim-a/b data 5").kind == .raw)  // not a valid device name inside
    }
}
