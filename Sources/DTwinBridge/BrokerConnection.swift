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
    /// keeps its QoS 1 messages while it restarts), `online`/`offline` on `<prefix>/bridge/status`
    /// (`<prefix>/bridge/status/<instance>` for one of several).
    public static func bridge(_ configuration: DTwinConfiguration) -> MQTTClientConfiguration {
        var client = MQTTClientConfiguration(
            broker: configuration.broker, ca: configuration.ca, clientID: configuration.bridgeClientId, cleanSession: false)
        // One of several: its own topic (README: "Several instances"); the group's is kept by all.
        let tree = configuration.topicPrefix
        let status = configuration.instance.isEmpty ? tree.bridgeStatus : tree.instanceStatus(configuration.instance)
        client.will = .init(topic: status, payload: "offline", retain: true)
        client.birth = .init(topic: status, payload: "online", retain: true)
        client.maxInflight = 1000
        // One of a group: back on the broker at once after it restarts. Mosquitto (2.0.11,
        // measured) keeps a persistent session's plain subscriptions across its restart but not
        // its `$share/...` ones, so until an instance subscribes again the group's messages have
        // no subscriber and are dropped (README: "Several instances").
        if !configuration.sharedGroup.isEmpty { client.reconnectDelay = (.milliseconds(50), .milliseconds(500)) }
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
