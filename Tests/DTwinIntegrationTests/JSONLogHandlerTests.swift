import DTwinApp
import DTwinContract
import Foundation
import Logging
import Synchronization
import Testing

/// `logFormat: json`: every record is one line of JSON with its level, source and metadata.
@Suite struct JSONLogHandlerTests {
    @Test func aRecordIsOneJSONLine() throws {
        let line = JSONLogHandler.line(
            millis: 1_764_590_400_123, level: .warning, label: "dtwin", source: "DTwinBridge",
            message: "delivery failed; \"will\" retry\nsoon", metadata: ["device": "uno1", "retryIn": "0.4 seconds"])
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        let object = try #require(JSONValue.parse(Array(line.utf8)))
        #expect(object["ts"]?.stringValue == "2025-12-01T12:00:00.123Z")
        #expect(object["level"]?.stringValue == "warning")
        #expect(object["source"]?.stringValue == "DTwinBridge")
        #expect(object["message"]?.stringValue == "delivery failed; \"will\" retry\nsoon")
        #expect(object["metadata"]?["device"]?.stringValue == "uno1")
    }

    @Test func theHandlerWritesLoggerMetadataAndRespectsItsLevel() throws {
        let lines = Mutex<[String]>([])
        var handler = JSONLogHandler(label: "dtwin") { line in lines.withLock { $0.append(line) } }
        handler.logLevel = .notice
        var logger = Logger(label: "dtwin") { _ in handler }
        logger[metadataKey: "instance"] = "gw1"
        logger.info("not shown")
        logger.notice("shown", metadata: ["device": "uno1"])
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let object = try #require(JSONValue.parse(Array(written[0].utf8)))
        #expect(object["metadata"]?["instance"]?.stringValue == "gw1")
        #expect(object["metadata"]?["device"]?.stringValue == "uno1")
    }
}

/// Outside input in a log line is shown, never obeyed (issue 18): control characters escaped,
/// long values cut, through whichever handler it wraps.
@Suite struct SanitizingLogHandlerTests {
    typealias Sanitizing = SanitizingLogHandler<JSONLogHandler>

    @Test func controlCharactersAreEscapedAndLongTextIsCut() {
        #expect(Sanitizing.clean("sim-uno1 data 512", limit: 100) == "sim-uno1 data 512")
        #expect(Sanitizing.clean("@uno1\u{1B}[31mINJ\u{0}\n\u{7F}\u{2028}x", limit: 100) == #"@uno1\u{1B}[31mINJ\u{0}\u{A}\u{7F}\u{2028}x"#)
        #expect(Sanitizing.clean(String(repeating: "t", count: 60_000), limit: 10) == "tttttttttt… (59990 more characters)")
        #expect(Sanitizing.clean("été ✓", limit: 100) == "été ✓", "printable Unicode is kept")
    }

    @Test func theMessageAndEveryMetadataValueAreCleaned() throws {
        let lines = Mutex<[String]>([])
        let handler = SanitizingLogHandler(JSONLogHandler(label: "dtwin") { line in lines.withLock { $0.append(line) } }, limit: 50)
        let logger = Logger(label: "dtwin") { _ in handler }
        logger.warning(
            "message ignored \u{1B}]0;owned\u{7}",
            metadata: ["topic": "\(String(repeating: "x", count: 80))", "list": .array(["a\nb"]), "map": .dictionary(["k": "\u{0}"])])
        let line = try #require(lines.withLock { $0.first })
        let object = try #require(JSONValue.parse(Array(line.utf8)))
        #expect(object["message"]?.stringValue == #"message ignored \u{1B}]0;owned\u{7}"#)
        #expect(object["metadata"]?["topic"]?.stringValue == String(repeating: "x", count: 50) + "… (30 more characters)")
        // Nested values are escaped before the list or map is written out (which quotes them again).
        let list = try #require(object["metadata"]?["list"]?.stringValue)
        let map = try #require(object["metadata"]?["map"]?.stringValue)
        #expect(list.contains("u{A}b") && !list.contains("\n"), "\(line)")
        #expect(map.contains("u{0}") && !map.unicodeScalars.contains("\u{0}"), "\(line)")
    }
}
