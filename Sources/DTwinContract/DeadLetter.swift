import Foundation

/// What the bridge publishes on `<prefix>/bridge/deadletter` for a message it cannot deliver:
/// enough to understand the failure and to re-publish the original bytes.
public struct DeadLetter: Codable, Sendable, Equatable {
    /// The MQTT topic the message arrived on.
    public var topic: String
    /// The original payload, base64.
    public var payload: String
    public var reason: String
    /// Set when `payload` holds only the first `includedPayloadLimit` bytes: the original's size.
    public var payloadSize: Int?
    public var device: String?
    public var messageId: String?
    public var receivedAt: String?
    public var attempts: Int?

    public init(
        topic: String, payload: [UInt8], reason: String, device: String? = nil, messageId: String? = nil,
        receivedAt: String? = nil, attempts: Int? = nil
    ) {
        self.topic = topic
        if payload.count > Self.includedPayloadLimit {
            self.payload = Data(payload.prefix(Self.includedPayloadLimit)).base64EncodedString()
            self.payloadSize = payload.count
        } else {
            self.payload = Data(payload).base64EncodedString()
        }
        self.reason = reason
        self.device = device
        self.messageId = messageId
        self.receivedAt = receivedAt
        self.attempts = attempts
    }

    public init(message: DeviceMessage, reason: String, attempts: Int) {
        self.init(
            topic: message.topic, payload: message.payload, reason: reason, device: message.device.rawValue,
            messageId: message.id.rawValue, receivedAt: Timestamp.iso8601(millis: message.receivedAtMillis),
            attempts: attempts)
    }

    /// At most this much of the original payload is carried. A dead letter must itself fit the
    /// broker's message limit: base64 makes it a third bigger, so a whole 1 MiB payload would come
    /// back as a 1.4 MB publish that a broker limiting messages to 1 MiB drops (or disconnects the
    /// bridge for, again at every reconnect). 192 KiB makes every dead letter under 270 kB.
    public static let includedPayloadLimit = 192 * 1024

    public var payloadBytes: [UInt8]? { Data(base64Encoded: payload).map(Array.init) }

    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a struct of strings and integers cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }
}
