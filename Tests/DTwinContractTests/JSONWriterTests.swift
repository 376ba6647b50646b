import DTwinContract
import Foundation
import Testing

/// The twin documents' JSON is written without Foundation's encoder (issue 22): it must read
/// back as the same document, and mean what `JSONEncoder` meant.
@Suite struct JSONWriterTests {
    static let awkwardText = "quote \" backslash \\ slash / newline \n tab \t return \r bell \u{07} nul \u{00} unit \u{1F} é ✓ 🌡"
    static let numbers: [Double] = [
        0, -0.0, 1, -1, 723, 21.5, -734.25, 0.1, 1e-7, 5e-324, 1e15, 1e15 + 1, 123_456_789_012_345, 9_007_199_254_740_993,
        1e20, -1e300, .greatestFiniteMagnitude, .pi,
    ]

    /// A twin with every kind of member: nested values, awkward text, every number above,
    /// pending keys with and without a send time.
    static func document() throws -> TwinDocument {
        var twin = TwinDocument(device: "uno-1")
        twin.version = 42
        twin.desired = [
            "led": .bool(true), "period": .number(60), "label": .string(awkwardText),
            "nested": .object(["list": .array(numbers.map(JSONValue.number) + [.null, .bool(false)]), "empty": .object([:]), "none": .array([])]),
        ]
        twin.reported = ["led": .bool(false), "value": .number(21.5), "at": .string("2026-12-02T10:00:00.123Z"), "online": .bool(true)]
        twin.desiredAt = ["led": 1_764_000_000_000, "period": -5]
        twin.reportedAt = ["led": 1_764_000_000_001, "value": .max]
        let pending = { (json: String) throws -> TwinDocument.Pending in try JSONDecoder().decode(TwinDocument.Pending.self, from: Data(json.utf8)) }
        twin.pending = [
            "led": try pending(#"{"value": true, "command": "LIG", "sinceMillis": 1, "deadlineMillis": 2, "failed": false, "sentMillis": 3}"#),
            "label": try pending(#"{"value": "a \"b\" \\ \n", "command": "SAY x", "sinceMillis": 4, "deadlineMillis": 5, "failed": true}"#),
        ]
        return twin
    }

    @Test(arguments: [false, true]) func aDocumentReadsBackAsItself(withDelta: Bool) throws {
        let twin = try Self.document()
        let read = try JSONDecoder().decode(TwinDocument.self, from: Data(twin.json(withDelta: withDelta)))
        #expect(read == twin)
        #expect(TwinDocument(device: "empty").json(withDelta: withDelta).count > 2)
        #expect(
            try JSONDecoder().decode(TwinDocument.self, from: Data(TwinDocument(device: "empty").json(withDelta: withDelta)))
                == TwinDocument(device: "empty"))
    }

    /// The published bytes mean what `JSONEncoder` wrote for the published form: the same
    /// objects, arrays, strings and numbers (compared as Foundation parses both).
    @Test func thePublishedDocumentMeansWhatJSONEncoderWrote() throws {
        let twin = try Self.document()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let foundation = try JSONSerialization.jsonObject(with: encoder.encode(twin.published)) as? NSDictionary
        let written = try JSONSerialization.jsonObject(with: Data(twin.jsonBytes)) as? NSDictionary
        #expect(foundation != nil && written == foundation)
        // Without the delta: the Encodable form the twin table held before.
        let stored = try JSONSerialization.jsonObject(with: Data(twin.json(withDelta: false))) as? NSDictionary
        let encodable = try JSONSerialization.jsonObject(with: JSONEncoder().encode(twin)) as? NSDictionary
        #expect(stored != nil && stored == encodable)
    }

    /// Keys in order at every level, no spaces: equal documents are equal bytes.
    @Test func keysAreSortedAtEveryLevel() {
        var twin = TwinDocument(device: "d")
        twin.reported = ["b": .object(["z": .number(1), "a": .array([.string("x"), .number(0.5)])]), "a": .null]
        let text = String(decoding: twin.json(withDelta: false), as: UTF8.self)
        #expect(
            text
                == #"{"desired":{},"desiredAt":{},"device":"d","pending":{},"reported":{"a":null,"b":{"a":["x",0.5],"z":1}},"reportedAt":{},"version":0}"#
        )
        #expect(twin.jsonBytes == twin.jsonBytes)
    }

    /// Every number reads back as the same `Double`; whole ones have no fraction; JSON has no
    /// NaN or infinity, so those are written as null rather than as text no parser takes.
    @Test func numbersReadBackExactly() throws {
        for number in Self.numbers {
            var twin = TwinDocument(device: "d")
            twin.reported = ["n": .number(number)]
            let read = try JSONDecoder().decode(TwinDocument.self, from: Data(twin.json(withDelta: false)))
            #expect(read.reported["n"] == .number(number), "\(number)")
        }
        var whole = TwinDocument(device: "d")
        whole.reported = ["n": .number(723), "nan": .number(.nan), "inf": .number(-.infinity)]
        let text = String(decoding: whole.json(withDelta: false), as: UTF8.self)
        #expect(text.contains(#""n":723,"#) && text.contains(#""nan":null"#) && text.contains(#""inf":null"#), "\(text)")
    }

    /// Every byte below 0x20, quotes and backslashes are escaped; the rest of UTF-8 is kept.
    @Test func textWithEveryControlCharacterReadsBack() throws {
        let controls = String(decoding: Array(0..<0x20 as Range<UInt8>), as: UTF8.self)
        for text in [Self.awkwardText, controls, "", "\"", "\\"] {
            var twin = TwinDocument(device: "d")
            twin.reported = [text: .string(text)]
            let bytes = twin.json(withDelta: false)
            #expect(!bytes.contains { $0 < 0x20 }, "raw control characters are not JSON")
            let read = try JSONDecoder().decode(TwinDocument.self, from: Data(bytes))
            #expect(read.reported == [text: .string(text)])
        }
    }
}
