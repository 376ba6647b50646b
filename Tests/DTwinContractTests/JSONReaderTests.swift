import Foundation
import Testing

@testable import DTwinContract

/// The twin documents are read back without Foundation's decoder where they plainly can be
/// (issue 22): the reader must agree with `JSONDecoder` on JSON, refuse what is not JSON, and
/// leave the rest to it.
@Suite struct JSONReaderTests {
    static let valid = [
        #"{}"#, #"[]"#, #"  {"a" : [1, 2.5, -0, 0, true, false, null] ,"b":{"c":"d"}}  "#, "\n\t{\r\n}\n",
        #""plain""#, #""""#, #""quote \" backslash \\ slash \/ \b\f\n\r\t""#, #""\u00e9\u00E9 \u2713 \ud83c\udf21 é ✓ 🌡""#,
        #"[0, -1, 1.5e3, 1E-7, -12.25, 123456789012, 1e308, 2.2250738585072014e-308, 0.1, 9007199254740993]"#,
        "[-0]", "[-0.0]", "[0e-400]", "[1E+2]", "[12345678901234567890]", "[5e-324]", #"{"a": 1, "a": 2}"#,
        #"{"device":"uno-1","version":3,"desired":{"led":true},"reported":{},"desiredAt":{"led":1764000000000},"reportedAt":{},"pending":{}}"#,
    ]

    @Test(arguments: valid) func readsWhatJSONDecoderReads(_ text: String) throws {
        let expected = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(JSONReader.parse(Array(text.utf8)) == expected)
        #expect(JSONValue.parse(Array(text.utf8)) == expected)
    }

    static let invalid: [[UInt8]] =
        [
            "", "{", "}", #"{"a" 1}"#, "{a:1}", "'x'", "01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "tru", "nul",
            "falsey", "1 2", "[1e400]", "[-1e400]", "[1e-400]", #""\x""#, #""\u12""#, #""\u12G4""#, #""unterminated"#, "[1] x", "\"a\u{01}b\"",
            "\"tab\tinside\"",
        ].map { Array($0.utf8) } + [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22]]

    @Test(arguments: invalid) func refusesWhatIsNotJSON(_ bytes: [UInt8]) {
        #expect(JSONReader.parse(bytes) == nil)
        #expect((try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))) == nil, "not JSON for Foundation either")
        #expect(JSONValue.parse(bytes) == nil)
    }

    /// Left to `JSONDecoder`: an unpaired surrogate, nesting deeper than the reader goes, and a
    /// trailing comma (which Foundation's decoder takes).
    @Test func leavesTheUnusualToJSONDecoder() {
        for text in ["[1,]", #"{"a":1,}"#, "\u{FEFF}[1]"] {
            #expect(JSONReader.parse(Array(text.utf8)) == nil)
            let decoded = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
            #expect(decoded != nil && JSONValue.parse(Array(text.utf8)) == decoded, "JSONValue.parse reads it as before")
        }
        #expect(JSONReader.parse(Array(#""\ud800""#.utf8)) == nil)
        #expect(JSONReader.parse(Array(#""\udc00x""#.utf8)) == nil)
        let deep = String(repeating: "[", count: JSONReader.maxDepth + 2) + String(repeating: "]", count: JSONReader.maxDepth + 2)
        #expect(JSONReader.parse(Array(deep.utf8)) == nil)
        let deepest = String(repeating: "[", count: JSONReader.maxDepth + 1) + String(repeating: "]", count: JSONReader.maxDepth + 1)
        #expect(JSONReader.parse(Array(deepest.utf8)) != nil)
    }

    /// Documents written by ``JSONWriter`` read back as themselves; one `JSONEncoder` wrote
    /// (the twin table's older rows: `/` escaped) too; and one the reader cannot hold exactly
    /// (a time past 2^53) goes to `JSONDecoder`, which reads it exactly.
    @Test func documentsReadBackWhoeverWroteThem() throws {
        let twin = try JSONWriterTests.document()
        #expect(try TwinDocument(json: twin.json(withDelta: false)) == twin)
        #expect(try TwinDocument(json: twin.jsonBytes) == twin)
        var legacy = TwinDocument(device: "uno-1")
        legacy.reported = ["path": .string("a/b"), "value": .number(21.5)]
        legacy.reportedAt = ["path": 1_764_000_000_000, "value": 9_007_199_254_740_993]
        let encoded = try Array(JSONEncoder().encode(legacy))
        #expect(String(decoding: encoded, as: UTF8.self).contains(#"a\/b"#))
        #expect(try TwinDocument(json: encoded) == legacy)
        #expect(throws: (any Error).self) { try TwinDocument(json: Array(#"{"device":"x"}"#.utf8)) }
    }
}
