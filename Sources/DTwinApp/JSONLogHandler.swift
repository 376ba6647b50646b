import DTwinContract
import Foundation
import Logging

/// `logFormat: json`: one JSON object per line on standard error, for log collectors
/// (journald's JSON, Loki, CloudWatch agent) that index fields instead of parsing text.
/// `{"ts": "…Z", "level": "info", "label": "dtwin", "source": "DTwinBridge", "message": "…",
/// "metadata": {"device": "uno1"}}`; metadata values are their text.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.write = write
    }

    /// One `write` per line, so lines from concurrent tasks never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        write(
            Self.line(
                millis: Timestamp.nowMillis(), level: event.level, label: label, source: event.source,
                message: event.message.description, metadata: fields))
    }

    /// The JSON line for one record. Pure.
    public static func line(
        millis: Int64, level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata
    ) -> String {
        var object: [String: JSONValue] = [
            "ts": .string(Timestamp.iso8601(millis: millis)), "level": .string(level.rawValue), "label": .string(label),
            "source": .string(source), "message": .string(message),
        ]
        if !metadata.isEmpty { object["metadata"] = .object(metadata.mapValues { .string($0.description) }) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(object)) ?? Data(#"{"message":"unencodable log record"}"#.utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
