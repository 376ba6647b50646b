import DTwinContract
import Foundation

/// One message seen on the broker, as `dtwin inspect` records it and `dtwin replay` reads it.
/// Plain values (no MQTT types), so everything that interprets it is pure.
public struct Observation: Sendable, Equatable {
    /// When it was seen, Unix milliseconds.
    public var atMillis: Int64
    public var topic: String
    public var qos: Int
    public var retain: Bool
    public var payload: [UInt8]

    public init(atMillis: Int64, topic: String, qos: Int, retain: Bool, payload: [UInt8]) {
        self.atMillis = atMillis
        self.topic = topic
        self.qos = qos
        self.retain = retain
        self.payload = payload
    }

    /// The payload as text when it is UTF-8 without control characters other than tab and
    /// newline; `nil` for binary.
    public var text: String? {
        guard let text = String(validating: payload, as: UTF8.self) else { return nil }
        let printable = text.unicodeScalars.allSatisfy {
            $0 == "\t" || $0 == "\n" || $0 == "\r" || $0.properties.generalCategory != .control
        }
        return printable ? text : nil
    }
}
