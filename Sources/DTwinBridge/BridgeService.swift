import DTwinContract
import DTwinMQTT
import DTwinTwilio
import DTwinUpstream
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The bridge (DESIGN.md §1): device messages from MQTT become IoT events for the upstream;
/// replies go back down; what cannot be delivered goes to the dead letter topic.
///
/// Messages wait in per-device lanes (``DeliveryLanes``): one delivery at a time per device,
/// in order, and up to `upstream.concurrency` devices at once.
public final class BridgeService: Service, Sendable {
    enum Job: Sendable {
        case deliver(DeviceMessage)
        case publishDeadLetter(DeadLetter)
    }

    /// Dead letters found at intake get a lane of their own, which no device name can equal.
    static let deadLetterLane = "\u{0}deadletter"

    public let counters = BridgeCounters()
    let mqtt: MQTTClient
    let upstream: any Upstream
    let tree: TopicTree
    let maxPayload: Int
    let retryPolicy: RetryPolicy
    let concurrency: Int
    let shutdownTimeout: Duration
    let logger: Logger
    let scheduler = DeliveryScheduler<Job>()
    let activeWorkers = Atomic<Int>(0)
    let lastIntakeMillis = Atomic<Int64>(0)
    public let registry: DeviceRegistry
    public let dispatcher: CommandDispatcher
    let smsRelay: SMSRelay?
    let ipCommandMarks = IPCommandMarks()

    public init(
        mqtt: MQTTClient, upstream: any Upstream, dispatcher: CommandDispatcher, registry: DeviceRegistry,
        smsRelay: SMSRelay?, tree: TopicTree, maxPayload: Int, retryPolicy: RetryPolicy, concurrency: Int,
        shutdownTimeout: Duration, logger: Logger
    ) {
        self.mqtt = mqtt
        self.upstream = upstream
        self.dispatcher = dispatcher
        self.registry = registry
        self.smsRelay = smsRelay
        self.tree = tree
        self.maxPayload = maxPayload
        self.retryPolicy = retryPolicy
        self.concurrency = concurrency
        self.shutdownTimeout = shutdownTimeout
        self.logger = logger
    }

    /// Whether the bridge is connected to the broker now (for readiness checks).
    public var brokerConnected: Bool { mqtt.isConnected }

    /// The latest broker connection failure, in words.
    public var brokerError: String? { mqtt.lastError?.message }

    /// The last `online`/`offline` each device announced.
    public var deviceStatuses: [DeviceName: String] { registry.statuses }

    /// Publishes a Super SIM IP command's payload on the device's `up` topic, for every
    /// subscriber to see; the bridge delivers it upstream with `Source` = `twilio-ipcommand`.
    public func publishFromIPCommand(_ payload: [UInt8], device: DeviceName) async throws {
        let topic = tree.up(device)
        ipCommandMarks.mark(topic: topic, payload: payload, now: Timestamp.nowMillis())
        do {
            try await mqtt.publish(topic: topic, payload: payload, qos: .atLeastOnce, timeout: .seconds(10))
        } catch {
            _ = ipCommandMarks.consume(topic: topic, payload: payload, now: Timestamp.nowMillis())
            throw error
        }
    }

    public func run() async throws {
        for filter in tree.bridgeSubscriptions { mqtt.addSubscription(filter, qos: .atLeastOnce) }
        mqtt.start()
        logger.info(
            "bridge started",
            metadata: [
                "broker": "\(mqtt.configuration.endpointDescription)", "upstream": "\(upstream.name)",
                "topics": "\(tree.bridgeSubscriptions.joined(separator: " "))",
            ])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.intake() }
            let executors = upstream.workerExecutors
            for index in 0..<concurrency {
                let executor = executors.isEmpty ? nil : executors[index % executors.count]
                group.addTask(executorPreference: executor) { await self.worker() }
            }
            group.addTask { await self.reportStats() }
            // Runs until SIGTERM/SIGINT (or cancellation), then shuts down in order.
            try? await gracefulShutdown()
            await shutDown()
            group.cancelAll()
        }
        logger.info("bridge stopped", metadata: counters.snapshot.metadata)
    }

    // MARK: intake

    func intake() async {
        var generator = SplitMix64()
        for await message in mqtt.messages {
            let now = Timestamp.nowMillis()
            lastIntakeMillis.store(now, ordering: .relaxed)
            let id = MessageID(millis: now, using: &generator)
            switch MessageIntake.decide(message, tree: tree, maxPayload: maxPayload, receivedAtMillis: now, id: id) {
            case .deliver(var deviceMessage):
                counters.received.increment()
                registry.noteMessage(deviceMessage.device, payload: deviceMessage.payload, atMillis: now)
                if ipCommandMarks.consume(topic: deviceMessage.topic, payload: deviceMessage.payload, now: now) {
                    deviceMessage.source = .twilioIPCommand
                }
                scheduler.enqueue(.deliver(deviceMessage), lane: deviceMessage.device.rawValue)
            case .deadLetter(let deadLetter):
                counters.received.increment()
                // Published (and logged, with the reason) by a worker: intake never waits on the broker.
                scheduler.enqueue(.publishDeadLetter(deadLetter), lane: Self.deadLetterLane)
            case .sms(let device, let text):
                if let smsRelay {
                    smsRelay.relay(text, about: device, origin: .device, logger: logger)
                } else {
                    logger.warning("SMS from a device ignored: Twilio is not set up in this process", metadata: ["device": "\(device)"])
                }
            case .deviceStatus(let device, let status):
                registry.noteStatus(device, status)
                logger.info("device status", metadata: ["device": "\(device)", "status": "\(status)"])
            case .ownTopic:
                break
            case .ignore(let reason):
                logger.warning("message ignored", metadata: ["topic": "\(message.topic.debugDescription)", "reason": "\(reason)"])
            }
        }
    }

    // MARK: delivery

    func worker() async {
        activeWorkers.add(1, ordering: .relaxed)
        defer { activeWorkers.subtract(1, ordering: .relaxed) }
        while let (lane, job) = await scheduler.next() {
            switch job {
            case .deliver(let message): await deliver(message)
            case .publishDeadLetter(let deadLetter): await publishDeadLetter(deadLetter)
            }
            scheduler.complete(lane: lane)
        }
    }

    /// Delivers one message, retrying per ``RetryPolicy`` until it is delivered, rejected or too old.
    func deliver(_ message: DeviceMessage) async {
        let event = IoTEvent(message: message)
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled {
                abandon(message, reason: "shutdown timeout reached before delivery")
                return
            }
            switch await upstream.deliver(event, logger: logger) {
            case .delivered(let reply, let note):
                counters.delivered.increment()
                if let note {
                    logger.warning("upstream answer ignored for replies", metadata: ["device": "\(message.device)", "reason": "\(note)"])
                }
                if attempt > 1 {
                    logger.info("delivered after retries", metadata: ["messageId": "\(message.id)", "attempts": "\(attempt)"])
                }
                if let reply { await publishReply(reply, to: message.device) }
                return
            case .reject(let reason):
                await publishDeadLetter(DeadLetter(message: message, reason: reason, attempts: attempt))
                return
            case .retry(let reason):
                counters.retries.increment()
                let age = Duration.milliseconds(Timestamp.nowMillis() - message.receivedAtMillis)
                switch retryPolicy.decide(afterAttempt: attempt, age: age, jitter: Double.random(in: 0..<1)) {
                case .giveUp:
                    let why = "gave up after \(attempt) attempts over \(age): \(reason)"
                    await publishDeadLetter(DeadLetter(message: message, reason: why, attempts: attempt))
                    return
                case .retry(let pause):
                    // The first failure and every tenth after it: an outage must not flood the log.
                    if attempt % 10 == 1 {
                        logger.warning(
                            "delivery failed; will retry",
                            metadata: [
                                "device": "\(message.device)", "messageId": "\(message.id)", "attempt": "\(attempt)",
                                "reason": "\(reason)", "retryIn": "\(pause)",
                            ])
                    }
                    do {
                        try await Task.sleep(for: pause)
                    } catch {
                        abandon(message, reason: "shutdown timeout reached while waiting to retry: \(reason)")
                        return
                    }
                }
            }
        }
    }

    func publishReply(_ reply: String, to device: DeviceName) async {
        do {
            let route = try await dispatcher.send(reply, to: device)
            counters.replies.increment()
            logger.debug("reply sent", metadata: ["device": "\(device)", "route": "\(route.rawValue)", "reply": "\(reply)"])
        } catch {
            logger.error("reply not sent", metadata: ["device": "\(device)", "reply": "\(reply)", "error": "\(error)"])
        }
    }

    func publishDeadLetter(_ deadLetter: DeadLetter) async {
        counters.deadLettered.increment()
        let json = deadLetter.jsonBytes()
        logger.warning(
            "dead letter", metadata: ["topic": "\(deadLetter.topic.debugDescription)", "reason": "\(deadLetter.reason)"])
        do {
            try await mqtt.publish(topic: tree.deadLetter, payload: json, qos: .atLeastOnce, timeout: .seconds(10))
        } catch {
            // The log line is then the only copy: it carries the whole dead letter.
            logger.error(
                "dead letter not published", metadata: ["error": "\(error)", "deadLetter": "\(String(decoding: json, as: UTF8.self))"])
        }
    }

    /// Without a spool, a message abandoned at shutdown survives only in the log: log all of it.
    func abandon(_ message: DeviceMessage, reason: String) {
        counters.lost.increment()
        let record = DeadLetter(message: message, reason: reason, attempts: 0).jsonBytes()
        logger.error("message not delivered", metadata: ["reason": "\(reason)", "message": "\(String(decoding: record, as: UTF8.self))"])
    }

    // MARK: shutdown

    /// Drain, announce `offline`, disconnect, finish what arrived meanwhile; all within
    /// `shutdownTimeout`, after which remaining work is abandoned (and logged in full).
    func shutDown() async {
        let deadline = ContinuousClock.now + shutdownTimeout
        logger.info("bridge shutting down", metadata: ["queued": "\(scheduler.queuedCount)", "inFlight": "\(scheduler.inFlightCount)"])
        // 1. Let queued and in-flight deliveries finish while replies can still be published.
        //    "Quiet" means idle and no new message for 100 ms.
        while ContinuousClock.now < deadline {
            let quiet = Timestamp.nowMillis() - lastIntakeMillis.load(ordering: .relaxed) >= 100
            if scheduler.isIdle && quiet { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        // 2. Announce offline (the broker only sends the will for an unclean disconnect).
        if mqtt.isConnected, let will = mqtt.configuration.will {
            do {
                try await mqtt.publish(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, timeout: .seconds(2))
            } catch {
                logger.warning("could not publish offline status", metadata: ["error": "\(error)"])
            }
        }
        // 3. Disconnect: the intake loop ends after the last received message.
        await mqtt.close()
        scheduler.finish()
        // 4. Whatever arrived in between is still delivered upstream, until the deadline.
        while activeWorkers.load(ordering: .relaxed) > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for job in scheduler.removeAllQueued() {
            switch job {
            case .deliver(let message): abandon(message, reason: "shutdown timeout reached before delivery")
            case .publishDeadLetter(let deadLetter):
                counters.lost.increment()
                logger.error("dead letter not published", metadata: ["deadLetter": "\(String(decoding: deadLetter.jsonBytes(), as: UTF8.self))"])
            }
        }
    }

    // MARK: stats

    func reportStats() async {
        var previous = counters.snapshot
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(60)) } catch { return }
            let now = counters.snapshot
            guard now != previous else { continue }
            var metadata = now.metadata
            metadata["queued"] = "\(scheduler.queuedCount)"
            logger.info("bridge stats", metadata: metadata)
            previous = now
        }
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
