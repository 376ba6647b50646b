import CoreMetrics
import DTwinContract
import DTwinMQTT
import DTwinSpool
import DTwinTwilio
import DTwinUpstream
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The bridge (README: "What the bridge does"): device messages from MQTT become IoT events for the upstream;
/// replies go back down; what cannot be delivered goes to the dead letter topic.
///
/// Messages arrive on the MQTT client's network thread (``accept(_:)``), are written to the
/// ``Spool`` there (before the broker gets its PUBACK), and wait in per-device lanes
/// (``DeliveryLanes``): one delivery at a time per device, in order, and up to
/// `upstream.concurrency` devices at once. Replies and dead letters wait in the
/// ``PublishQueue`` (the same spool file) until the broker has acknowledged them.
public final class BridgeService: Service, Sendable {
    public let counters: BridgeCounters
    let gauges: BridgeGauges
    let mqtt: MQTTClient
    let upstream: any Upstream
    let tree: TopicTree
    /// This bridge's place among several (README: "Several instances"); alone by default.
    let group: BridgeGroup
    /// Who says the bridge is up (``BridgeStatusBook``).
    let statusBook: Mutex<BridgeStatusBook>
    let maxPayload: Int
    let shutdownTimeout: Duration
    let logger: Logger
    /// The delivery workers: a service of their own, before the bridge in the group.
    public let delivery: DeliveryService
    let lastIntakeMillis = Atomic<Int64>(0)
    let spoolFailing = Atomic<Bool>(false)
    let messageIDs = Mutex(MonotonicMessageIDs())
    let spool: Spool?
    public let registry: DeviceRegistry
    public let dispatcher: CommandDispatcher
    let smsRelay: SMSRelay?
    /// The devices' twins (`nil` without a twin table): told what devices say.
    let twins: TwinService?
    /// What happens, for live views (the dashboard).
    public let live: LiveEvents
    /// What must hold before the bridge touches the broker (the application: its HTTP port is
    /// bound), so a bridge that cannot run fails before it takes anyone's client id.
    let beforeConnecting: @Sendable () async throws -> Void

    public init(
        mqtt: MQTTClient, upstream: any Upstream, spool: Spool?, publishQueue: PublishQueue, dispatcher: CommandDispatcher,
        registry: DeviceRegistry, smsRelay: SMSRelay?, twins: TwinService? = nil, live: LiveEvents = LiveEvents(), tree: TopicTree,
        group: BridgeGroup = BridgeGroup(),
        maxPayload: Int,
        retryPolicy: RetryPolicy,
        concurrency: Int,
        shutdownTimeout: Duration, metrics: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger,
        beforeConnecting: @escaping @Sendable () async throws -> Void = {}
    ) {
        self.beforeConnecting = beforeConnecting
        self.counters = BridgeCounters(upstream: upstream.name, factory: metrics)
        self.gauges = BridgeGauges(factory: metrics)
        self.mqtt = mqtt
        self.spool = spool
        self.publishQueue = publishQueue
        self.upstream = upstream
        self.dispatcher = dispatcher
        self.registry = registry
        self.smsRelay = smsRelay
        self.twins = twins
        self.live = live
        self.tree = tree
        self.group = group
        self.statusBook = Mutex(BridgeStatusBook(instance: group.instance))
        self.maxPayload = maxPayload
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
        self.delivery = DeliveryService(
            upstream: upstream, spool: spool, publishQueue: publishQueue, dispatcher: dispatcher, twins: twins, counters: counters, live: live,
            tree: tree,
            retryPolicy: retryPolicy, concurrency: concurrency, logger: logger)
    }

    /// Whether the bridge is connected to the broker now (for readiness checks).
    public var brokerConnected: Bool { mqtt.isConnected }

    /// The latest broker connection failure, in words.
    public var brokerError: String? { mqtt.lastError?.message }

    /// `true` while the spool refuses messages (full, or the disk fails): the bridge then holds
    /// back the broker's acknowledgement and reads nothing more until it can write again.
    public var spoolRefusing: Bool { spoolFailing.load(ordering: .relaxed) }

    /// Messages in the spool, delivered-but-not-yet-removed ones included (`nil`: no spool).
    public var spoolDepth: Int? { spool?.count }

    /// Where replies, commands and dead letters wait for the broker (the dispatcher's queue too).
    public let publishQueue: PublishQueue

    /// Why the bridge cannot do its job right now (`/readyz`); empty when it can.
    public var unreadiness: [String] {
        var problems: [String] = []
        if !brokerConnected {
            problems.append("not connected to the broker\(brokerError.map { ": \($0)" } ?? "")")
        }
        if spoolRefusing { problems.append("the spool refuses messages (full, or the disk fails): see the log") }
        return problems
    }

    /// The vital signs a live view shows.
    public var liveHealth: LiveHealth {
        let totals = counters.snapshot
        return LiveHealth(
            brokerConnected: brokerConnected, spoolMessages: spool?.count ?? 0, waitingForBroker: publishQueue.count,
            received: totals.received, delivered: totals.delivered, deadLettered: totals.deadLettered, problems: unreadiness)
    }

    /// Brings the gauges up to date; called just before the metrics are read.
    public func recordGauges() {
        gauges.brokerConnected.record(brokerConnected ? 1 : 0)
        gauges.spoolRefusing.record(spoolRefusing ? 1 : 0)
        gauges.spoolMessages.record(spool?.count ?? 0)
        gauges.spoolBytes.record(spool?.bytes ?? 0)
        gauges.waitingForBroker.record(publishQueue.count)
        gauges.queued.record(delivery.scheduler.queuedCount)
    }

    /// `local`, `apigw` or `lambda`.
    public var upstreamName: String { upstream.name }

    /// Sends the Lambda console's test event through the upstream (`POST /api/test-event`);
    /// a reply in the answer is reported, not published: the event is no device's.
    public func deliverTestEvent(_ event: ConsoleTestEvent) async -> DeliveryOutcome {
        await upstream.deliverTestEvent(event, logger: logger)
    }

    /// The last `online`/`offline` each device announced.
    public var deviceStatuses: [DeviceName: String] { registry.statuses }

    public func run() async throws {
        try await beforeConnecting()
        if let spool { try resume(from: spool) }
        mqtt.handleMessages { [self] message in accept(message) }
        let subscriptions = tree.bridgeSubscriptions(sharedGroup: group.sharedGroup)
        for filter in subscriptions { mqtt.addSubscription(filter, qos: .atLeastOnce) }
        mqtt.start()
        var metadata: Logger.Metadata = [
            "broker": "\(mqtt.configuration.endpointDescription)", "upstream": "\(upstream.name)",
            "topics": "\(subscriptions.joined(separator: " "))",
        ]
        if !group.instance.isEmpty { metadata["instance"] = "\(group.instance)" }
        logger.info("bridge started", metadata: metadata)
        // The delivery workers (DeliveryService), the publisher (OutboundPublisher), the spool's
        // removals (SpoolMaintenance) and the stats line (StatsReporter) are services of their
        // own in the same group. The bridge takes messages in until SIGTERM/SIGINT (or
        // cancellation), then shuts down in order.
        try? await gracefulShutdown()
        await shutDown()
        logger.info("bridge stopped", metadata: counters.snapshot.metadata)
    }
}

extension BridgeCounters.Snapshot {
    var metadata: Logger.Metadata {
        [
            "received": "\(received)", "delivered": "\(delivered)", "retries": "\(retries)",
            "deadLettered": "\(deadLettered)", "replies": "\(replies)", "lost": "\(lost)",
        ]
    }
}

/// Where one bridge stands among several on a shared subscription (README: "Several instances").
public struct BridgeGroup: Sendable, Equatable {
    /// This bridge's name in the group; empty when it runs alone.
    public var instance: String
    /// The `$share/<group>/` of its subscriptions; empty: plain subscriptions.
    public var sharedGroup: String

    public init(instance: String = "", sharedGroup: String = "") {
        self.instance = instance
        self.sharedGroup = sharedGroup
    }
}
