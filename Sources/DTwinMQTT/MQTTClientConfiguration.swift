/// Everything needed to connect an ``MQTTClient``.
public struct MQTTClientConfiguration: Sendable {
    /// A message the client publishes for itself: the last will (sent by the broker when the
    /// client vanishes) or the birth message (published by the client on every connect).
    public struct Announcement: Sendable, Equatable {
        public var topic: String
        public var payload: [UInt8]
        public var qos: MQTTQoS
        public var retain: Bool

        public init(topic: String, payload: String, qos: MQTTQoS = .atLeastOnce, retain: Bool = true) {
            self.topic = topic
            self.payload = Array(payload.utf8)
            self.qos = qos
            self.retain = retain
        }
    }

    /// The protocol the client speaks first. MQTT 5 by default: a broker answers a publish it
    /// refuses (an ACL) with a reason code, where MQTT 3.1.1 acknowledges it and drops it in
    /// silence. A broker that refuses 5 as an unsupported version is spoken to in 3.1.1.
    public enum ProtocolVersion: Sendable, Equatable {
        case v5, v311
    }

    public struct TLS: Sendable, Equatable {
        /// A PEM file of CA certificates; `nil` uses the operating system's trust store.
        public var caFile: String?
        public init(caFile: String? = nil) { self.caFile = caFile }
    }

    public var host: String
    public var port: Int
    public var clientID: String
    /// `false` keeps a persistent session: the broker queues QoS 1 messages while we are away.
    public var cleanSession: Bool
    public var keepAliveSeconds: Int
    public var username: String?
    public var password: String?
    public var tls: TLS?
    public var will: Announcement?
    public var birth: Announcement?
    /// Reconnect backoff: doubles from `minimum` up to `maximum`.
    public var reconnectDelay: (minimum: Duration, maximum: Duration)
    /// Outgoing QoS 1 messages in flight at once (0 = no limit).
    public var maxInflight: Int
    public var protocolVersion: ProtocolVersion = .v5
    /// Added to the "broker not reachable" warnings: where the address is set.
    public var unreachableHint: String?

    public init(
        host: String = "127.0.0.1", port: Int = 1883, clientID: String, cleanSession: Bool = false,
        keepAliveSeconds: Int = 30, username: String? = nil, password: String? = nil, tls: TLS? = nil,
        will: Announcement? = nil, birth: Announcement? = nil,
        reconnectDelay: (minimum: Duration, maximum: Duration) = (.milliseconds(250), .seconds(30)),
        maxInflight: Int = 100
    ) {
        self.host = host
        self.port = port
        self.clientID = clientID
        self.cleanSession = cleanSession
        self.keepAliveSeconds = keepAliveSeconds
        self.username = username
        self.password = password
        self.tls = tls
        self.will = will
        self.birth = birth
        self.reconnectDelay = reconnectDelay
        self.maxInflight = maxInflight
    }

    /// Where the client connects, for log lines (never with the password).
    public var endpointDescription: String {
        "\(tls == nil ? "mqtt" : "mqtts")://\(username.map { "\($0)@" } ?? "")\(host):\(port)"
    }
}
