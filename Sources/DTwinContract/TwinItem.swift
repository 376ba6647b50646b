import Foundation

/// One row of the twin table `digitaltwin` (README: "The twin table"), partition key `messageid`.
public struct TwinItem: Sendable, Equatable, Codable {
    public var messageId: String
    public var device: String
    /// ISO-8601 UTC with milliseconds: the device's own time when it sent one, else arrival time.
    public var ts: String
    /// The payload as text when it is UTF-8, else base64 (then ``payloadEncoding`` is `base64`).
    public var payload: String
    public var payloadEncoding: String?
    public var kind: DevicePayload.Kind
    public var value: Double?
    public var seq: Int64?
    public var source: String

    public init(
        messageId: String, device: String, ts: String, payload: String, payloadEncoding: String? = nil,
        kind: DevicePayload.Kind, value: Double? = nil, seq: Int64? = nil, source: String
    ) {
        self.messageId = messageId
        self.device = device
        self.ts = ts
        self.payload = payload
        self.payloadEncoding = payloadEncoding
        self.kind = kind
        self.value = value
        self.seq = seq
        self.source = source
    }

    /// The twin table's order, newest first: by time, then by message id. The bridge's ids
    /// increase in arrival order (``MonotonicMessageIDs``), so two items of the same millisecond
    /// keep the order they arrived in.
    public static func newerFirst(_ a: TwinItem, _ b: TwinItem) -> Bool {
        (a.ts, a.messageId) > (b.ts, b.messageId)
    }

    /// What ``from(event:)`` gives for `IoTEvent(message: message)`, from the message itself.
    public static func from(message: DeviceMessage) -> Result<TwinItem, TwinItemError> {
        guard !message.id.rawValue.isEmpty else { return .failure(.init("the event has no MessageId")) }
        return .success(
            item(
                messageID: message.id.rawValue, device: message.device, bytes: message.payload,
                receivedAtMillis: message.receivedAtMillis, source: message.source.rawValue))
    }

    /// What the seed's Lambda stores for an IoT event; `nil` with a reason when the event is not one.
    public static func from(event: IoTEvent) -> Result<TwinItem, TwinItemError> {
        guard let deviceText = event[IoTEvent.Name.simUniqueName] else {
            return .failure(.init("the event has no SimUniqueName"))
        }
        let device: DeviceName
        do { device = try DeviceName(validating: deviceText) } catch { return .failure(.init("\(error)")) }
        guard let base64 = event[IoTEvent.Name.payload], let bytes = Data(base64Encoded: base64) else {
            return .failure(.init("the event's Payload is missing or not base64"))
        }
        guard let messageID = event[IoTEvent.Name.messageID], !messageID.isEmpty else {
            return .failure(.init("the event has no MessageId"))
        }
        let received = event[IoTEvent.Name.receivedAt].flatMap(Timestamp.parseMillis)
        guard let received else { return .failure(.init("the event's ReceivedAt is missing or not ISO-8601")) }
        return .success(
            item(
                messageID: messageID, device: device, bytes: bytes, receivedAtMillis: received,
                source: event[IoTEvent.Name.source] ?? DeviceMessage.Source.mqtt.rawValue, base64: base64))
    }

    /// The item of a message's parts: its payload as text when it is UTF-8, else as base64.
    private static func item(
        messageID: String, device: DeviceName, bytes: some Collection<UInt8>, receivedAtMillis: Int64, source: String,
        base64: String? = nil
    ) -> TwinItem {
        let decoded = DevicePayload.decode(bytes)
        let text = String(validating: bytes, as: UTF8.self)
        return TwinItem(
            messageId: messageID,
            device: device.rawValue,
            ts: Timestamp.iso8601(millis: decoded.timestampMillis ?? receivedAtMillis),
            payload: text ?? base64 ?? Data(bytes).base64EncodedString(),
            payloadEncoding: text == nil ? "base64" : nil,
            kind: decoded.kind,
            value: decoded.value,
            seq: decoded.seq,
            source: source
        )
    }
}

public struct TwinItemError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}
