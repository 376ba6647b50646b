import Logging
import ServiceLifecycle

/// One `bridge stats` log line a minute, when anything changed: the running totals, what is
/// queued and what the spool holds.
public struct StatsReporter: Service {
    static let interval = Duration.seconds(60)

    let bridge: BridgeService
    let logger: Logger

    public init(bridge: BridgeService, logger: Logger) {
        self.bridge = bridge
        self.logger = logger
    }

    public func run() async throws {
        await periodically(every: Self.interval, state: bridge.counters.snapshot) { previous in
            let now = bridge.counters.snapshot
            guard now != previous else { return }
            var metadata = now.metadata
            metadata["queued"] = "\(bridge.delivery.scheduler.queuedCount)"
            if let spooled = bridge.spoolDepth { metadata["spooled"] = "\(spooled)" }
            logger.info("bridge stats", metadata: metadata)
            previous = now
        }
    }
}
