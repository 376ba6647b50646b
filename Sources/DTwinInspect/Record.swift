import DTwinContract
import Foundation

/// One line of `dtwin inspect --json` and of a `--record` file, which `dtwin replay` reads:
///
/// ```
/// {"at":"2026-11-25T10:00:00.123Z","decoded":{"device":"uno1","type":"reading","value":512,…},
///  "payload":"sim-uno1 data 512","qos":1,"retain":false,"topic":"dtwin/uno1/up"}
/// ```
/// The payload is `payload` when it is text, else `payloadBase64`.
public struct Record: Codable, Sendable, Equatable {
    public var at: String
    public var topic: String
    public var qos: Int
    public var retain: Bool
    public var payload: String?
    public var payloadBase64: String?
    public var decoded: [String: JSONValue]?

    public init(_ observation: Observation, meaning: Meaning?) {
        at = Timestamp.iso8601(millis: observation.atMillis)
        topic = observation.topic
        qos = observation.qos
        retain = observation.retain
        if let text = observation.text {
            payload = text
        } else {
            payloadBase64 = Data(observation.payload).base64EncodedString()
        }
        decoded = meaning?.fields
    }

    /// One JSON line (no newline).
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Reads a line back; the error says what is wrong with it.
    public static func parse(_ line: some StringProtocol) throws(RecordError) -> Observation {
        guard let record = try? JSONDecoder().decode(Record.self, from: Data(line.utf8)) else {
            throw RecordError("not a JSON object with at, topic, qos, retain and payload (or payloadBase64)")
        }
        guard let millis = Timestamp.parseMillis(record.at) else { throw RecordError("at \(record.at.debugDescription) is not an ISO-8601 time") }
        guard (0...2).contains(record.qos) else { throw RecordError("qos \(record.qos) is not 0, 1 or 2") }
        guard !record.topic.isEmpty, !record.topic.contains("+"), !record.topic.contains("#") else {
            throw RecordError("topic \(record.topic.debugDescription) cannot be published to")
        }
        let bytes: [UInt8]
        if let base64 = record.payloadBase64 {
            guard let data = Data(base64Encoded: base64) else { throw RecordError("payloadBase64 is not base64") }
            bytes = Array(data)
        } else if let text = record.payload {
            bytes = Array(text.utf8)
        } else {
            throw RecordError("no payload or payloadBase64")
        }
        return Observation(atMillis: millis, topic: record.topic, qos: record.qos, retain: record.retain, payload: bytes)
    }
}

public struct RecordError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
