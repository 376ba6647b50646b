import CoreMetrics
import Synchronization

/// Running totals: the periodic stats line reads them, and each is also a swift-metrics
/// counter (Prometheus at `/metrics` in the bridge). The workers and the intake (on the MQTT
/// network thread) bump them on every message, so both sides are lock-free atomics.
public final class BridgeCounters: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var received = 0
        public var delivered = 0
        public var retries = 0
        public var deadLettered = 0
        public var replies = 0
        public var lost = 0
        public var publishRefused = 0
    }

    /// One total, kept for the stats line and reported as a metric.
    final class Tally: Sendable {
        let value = Atomic<Int>(0)
        let counter: Counter

        init(_ label: String, dimensions: [(String, String)], factory: any MetricsFactory) {
            counter = Counter(label: label, dimensions: dimensions, factory: factory)
        }

        func increment() {
            value.add(1, ordering: .relaxed)
            counter.increment()
        }

        var count: Int { value.load(ordering: .relaxed) }
    }

    let received: Tally
    let delivered: Tally
    let retries: Tally
    let deadLettered: Tally
    let replies: Tally
    let lost: Tally
    /// Publishes the broker acknowledged with a refusal (MQTT 5 reason code; usually its ACL).
    let publishRefused: Tally

    /// `upstream` labels the delivery counters (`apigw`, `local`, …).
    public init(upstream: String, factory: any MetricsFactory) {
        let upstreamLabel = [("upstream", upstream)]
        received = Tally("dtwin_messages_received_total", dimensions: [], factory: factory)
        delivered = Tally("dtwin_messages_delivered_total", dimensions: upstreamLabel, factory: factory)
        retries = Tally("dtwin_delivery_retries_total", dimensions: upstreamLabel, factory: factory)
        deadLettered = Tally("dtwin_messages_dead_lettered_total", dimensions: upstreamLabel, factory: factory)
        replies = Tally("dtwin_replies_total", dimensions: upstreamLabel, factory: factory)
        lost = Tally("dtwin_messages_lost_total", dimensions: [], factory: factory)
        publishRefused = Tally("dtwin_publishes_refused_total", dimensions: [], factory: factory)
    }

    public var snapshot: Snapshot {
        Snapshot(
            received: received.count, delivered: delivered.count, retries: retries.count, deadLettered: deadLettered.count,
            replies: replies.count, lost: lost.count, publishRefused: publishRefused.count)
    }
}

/// Levels read when metrics are scraped (``BridgeService/recordGauges()``).
struct BridgeGauges: Sendable {
    let brokerConnected: Gauge
    let spoolRefusing: Gauge
    let spoolMessages: Gauge
    let spoolBytes: Gauge
    let waitingForBroker: Gauge
    let queued: Gauge

    init(factory: any MetricsFactory) {
        brokerConnected = Gauge(label: "dtwin_broker_connected", factory: factory)
        spoolRefusing = Gauge(label: "dtwin_spool_refusing", factory: factory)
        spoolMessages = Gauge(label: "dtwin_spool_messages", factory: factory)
        spoolBytes = Gauge(label: "dtwin_spool_bytes", factory: factory)
        waitingForBroker = Gauge(label: "dtwin_publish_queue_messages", factory: factory)
        queued = Gauge(label: "dtwin_delivery_queue_messages", factory: factory)
    }
}
