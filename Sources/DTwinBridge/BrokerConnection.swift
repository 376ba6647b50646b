import DTwinConfig
import DTwinContract
import DTwinMQTT

extension MQTTClientConfiguration {
    /// A client for `broker` (credentials and TLS from the URL and `ca`).
    public init(broker: BrokerURL, ca: String?, clientID: String, cleanSession: Bool) {
        self.init(
            host: broker.host, port: broker.port, clientID: clientID, cleanSession: cleanSession,
            username: broker.username, password: broker.password,
            tls: broker.tls ? TLS(caFile: ca.nonEmpty) : nil)
    }

    /// The bridge's own connection: a fixed client id with a persistent session (the broker
    /// keeps its QoS 1 messages while it restarts), `online`/`offline` on `<prefix>/bridge/status`.
    public static func bridge(_ configuration: DTwinConfiguration) -> MQTTClientConfiguration {
        var client = MQTTClientConfiguration(
            broker: configuration.broker, ca: configuration.ca, clientID: configuration.clientId, cleanSession: false)
        client.will = .init(topic: configuration.topicPrefix.bridgeStatus, payload: "offline", retain: true)
        client.birth = .init(topic: configuration.topicPrefix.bridgeStatus, payload: "online", retain: true)
        client.maxInflight = 1000
        client.unreachableHint = "is the broker running and listening there? The address is `broker` in the configuration (DTWIN_BROKER, or --broker)"
        return client
    }

    /// A short-lived tool connection (`dtwin send`, `inspect`): a unique id, clean session.
    public static func tool(_ configuration: DTwinConfiguration, name: String) -> MQTTClientConfiguration {
        var random = SystemRandomNumberGenerator()
        let suffix = String(random.next() & 0xFFFF_FFFF, radix: 16)
        return MQTTClientConfiguration(
            broker: configuration.broker, ca: configuration.ca, clientID: "dtwin-\(name)-\(suffix)", cleanSession: true)
    }
}
