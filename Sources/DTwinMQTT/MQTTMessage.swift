/// MQTT delivery guarantees dtwin uses (QoS 2 is not needed by anything in the contract).
public enum MQTTQoS: Int32, Sendable, Equatable, Comparable, CustomStringConvertible {
    case atMostOnce = 0
    case atLeastOnce = 1

    public static func < (lhs: MQTTQoS, rhs: MQTTQoS) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "QoS \(rawValue)" }
}

/// One message received from the broker. Topic and payload are copies: libmosquitto frees its
/// own buffers as soon as the callback returns.
public struct MQTTMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var qos: MQTTQoS
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: MQTTQoS = .atLeastOnce, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }
}
