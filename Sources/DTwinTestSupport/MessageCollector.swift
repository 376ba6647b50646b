import DTwinMQTT
import Foundation
import Logging
import Synchronization

/// An MQTT subscriber that records everything it receives, for assertions.
public final class MessageCollector: Sendable {
    public let client: MQTTClient
    private let received = Mutex<[MQTTMessage]>([])
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// Connects to the broker on `port`, subscribes to `filters` and waits for the SUBACK.
    /// `cleanSession: false` plays a device: the broker keeps its QoS 1 messages while it is away.
    public convenience init(
        port: Int, filters: [String], clientID: String = "collector-\(UUID().uuidString.prefix(8))", cleanSession: Bool = true
    ) async throws {
        try await self.init(
            configuration: MQTTClientConfiguration(port: port, clientID: clientID, cleanSession: cleanSession), filters: filters)
    }

    /// The same with a full client configuration (credentials, TLS).
    public init(configuration: MQTTClientConfiguration, filters: [String]) async throws {
        var logger = Logger(label: "collector")
        logger.logLevel = .warning
        client = try MQTTClient(configuration: configuration, logger: logger)
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        try await client.subscribe(filters, timeout: .seconds(10))
        let messages = client.messages
        let sink = Task { [self] in
            for await message in messages { received.withLock { $0.append(message) } }
        }
        task.withLock { $0 = sink }
    }

    public var messages: [MQTTMessage] { received.withLock { $0 } }

    public func messages(on topic: String) -> [MQTTMessage] { messages.filter { $0.topic == topic } }

    /// Waits (bounded) until `condition` holds for what has been received.
    @discardableResult
    public func waitFor(timeout: Duration = .seconds(10), _ condition: @escaping ([MQTTMessage]) -> Bool) async -> Bool {
        await waitUntil(timeout: timeout) { condition(messages) }
    }

    public func close() async {
        await client.close()
        await task.withLock { $0 }?.value
    }
}
