import Testing

@testable import DTwinContract

/// The intake's quick readings of the usual device message (its `up` topic, a payload of
/// printable ASCII) against the general readings they stand in for: the same answer for every
/// input, whichever way it is read.
@Suite struct IntakeQuickPathTests {
    static let afterPrefix = [
        "uno1/up", "esp-3/up", "bridge/up", "/up", "up", "uno1/up/x", "a/b/up", "café/up", "\u{301}x/up", "uno1/upx", "uno1/Up",
        "uno 1/up", "+/up", "#/up", "-/up", "\(String(repeating: "x", count: 64))/up", "\(String(repeating: "x", count: 65))/up",
        "uno1/down", "uno1/status", "uno1/state", "uno1/state/set", "bridge/status", "bridge/deadletter", "bridge/ipcommand/uno1",
        "", "uno1/u", "uno1//up",
    ]

    @Test(arguments: ["dtwin", "télémétrie", "lab/floor2"])
    func topicsParseAsTheyDoLevelByLevel(prefix: String) throws {
        let tree = try TopicTree(prefix: prefix)
        let topics = Self.afterPrefix.map { "\(prefix)/\($0)" } + ["other/uno1/up", "\(prefix)x/uno1/up", "\(prefix)/", "", "/up"]
        for topic in topics {
            #expect(tree.parse(topic) == tree.parseByLevels(topic, head: "\(prefix)/"), "\(topic.debugDescription)")
        }
        // The quick path is the one the usual topic takes, and only it.
        #expect(TopicTree.deviceLevelOfUp("\(prefix)/uno1/up", head: "\(prefix)/") == "uno1")
        #expect(TopicTree.deviceLevelOfUp("\(prefix)/café/up", head: "\(prefix)/") == nil)
        #expect(TopicTree.deviceLevelOfUp("\(prefix)/a/b/up", head: "\(prefix)/") == nil)
        #expect(tree.parse("\(prefix)/uno1/up") == .device(TopicTree.DeviceTopic(device: DeviceName("uno1")!, kind: .up)))
    }

    static let payloads: [[UInt8]] =
        [
            "sim-uno1 data 512", "sim-uno1 data 17\r\n", " sim-uno1 data 17", "sim-uno1   data    -42", "sim-uno1 data lots",
            "sim-uno1 data 9223372036854775808", "sim-uno1 data 5é", "uno1:awake", "sim-uno1:awake", ":awake", "awake",
            #"{"value": 512, "seq": 3, "led": "off"}"#, #" {"value": 1} "#, #"{"value": "x"}"#, "{", "{}", "[1]", "x", "~",
            "\u{00A0}sim-uno1 data 5", "sim-uno1 data 5\u{3000}", "\u{85}", " ", "\t", "\u{7F}sim-uno1 data 5", "sim-uno1 data 5\u{7F}",
            "",
        ].map { Array($0.utf8) } + [[0xFF, 0x00], [0x73, 0xFF], [0x7B, 0xC3, 0x28, 0x7D], Array("sim-uno1 data 5".utf8) + [0xC3]]

    @Test func payloadsDecodeAsTheGenericDecoderDoes() {
        for payload in Self.payloads {
            #expect(DevicePayload.decode(payload) == DevicePayload.decode(payload[...]), "\(payload)")
        }
        #expect(DevicePayload.decode(Array("sim-uno1 data 512".utf8)).value == 512)
        #expect(DevicePayload.decode([0xFF, 0x00]).format == .binary)
    }
}
