/// One message from a device, as the bridge received it: the unit that is delivered, retried,
/// stored and dead-lettered.
public struct DeviceMessage: Sendable, Equatable {
    /// Where the message entered the system (the IoT event's `Source`).
    public enum Source: String, Sendable, Equatable, Codable {
        case mqtt
        case twilioIPCommand = "twilio-ipcommand"
    }

    public var id: MessageID
    public var device: DeviceName
    public var topic: String
    public var payload: [UInt8]
    public var receivedAtMillis: Int64
    public var source: Source

    public init(
        id: MessageID, device: DeviceName, topic: String, payload: [UInt8], receivedAtMillis: Int64,
        source: Source = .mqtt
    ) {
        self.id = id
        self.device = device
        self.topic = topic
        self.payload = payload
        self.receivedAtMillis = receivedAtMillis
        self.source = source
    }
}
