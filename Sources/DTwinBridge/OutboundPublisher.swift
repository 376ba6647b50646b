import DTwinMQTT
import Logging
import ServiceLifecycle

/// Publishes what waits in the ``PublishQueue`` (replies, commands, dead letters, IP-command
/// copies) whenever the broker is connected, oldest first per topic; a message leaves the queue
/// only on the broker's PUBACK. A `Service` of its own, placed before the bridge in the service
/// group so that it still runs while the bridge drains at shutdown.
public struct OutboundPublisher: Service {
    let queue: PublishQueue
    let mqtt: MQTTClient
    let counters: BridgeCounters
    let logger: Logger

    public init(queue: PublishQueue, mqtt: MQTTClient, counters: BridgeCounters, logger: Logger) {
        self.queue = queue
        self.mqtt = mqtt
        self.counters = counters
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            await queue.run(mqtt: mqtt, logger: logger) { _ in counters.publishRefused.increment() }
        }
    }
}
