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
