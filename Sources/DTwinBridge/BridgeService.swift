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
    struct Job: Sendable {
        var message: DeviceMessage
        /// The message's sequence number in the spool (`nil`: in memory only).
        var spooled: Int64?
    }

    public let counters: BridgeCounters
    let gauges: BridgeGauges
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
    /// Rung when a worker exits, and when ``stopping`` is set: the shutdown and the retry
    /// pauses wait on it instead of polling.
    let workersOrStopping = ChangeSignal()
    let lastIntakeMillis = Atomic<Int64>(0)
    let stopping = Atomic<Bool>(false)
    let spoolFailing = Atomic<Bool>(false)
    let idGenerator = Mutex(SplitMix64())
    let spool: Spool?
    public let registry: DeviceRegistry
    public let dispatcher: CommandDispatcher
    let smsRelay: SMSRelay?

    public init(
        mqtt: MQTTClient, upstream: any Upstream, spool: Spool?, dispatcher: CommandDispatcher, registry: DeviceRegistry,
        smsRelay: SMSRelay?, tree: TopicTree, maxPayload: Int, retryPolicy: RetryPolicy, concurrency: Int,
        shutdownTimeout: Duration, metrics: any MetricsFactory = NOOPMetricsHandler.instance, logger: Logger
    ) {
        self.counters = BridgeCounters(upstream: upstream.name, factory: metrics)
        self.gauges = BridgeGauges(factory: metrics)
        self.mqtt = mqtt
        self.spool = spool
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

    /// `true` while the spool refuses messages (full, or the disk fails): the bridge then holds
    /// back the broker's acknowledgement and reads nothing more until it can write again.
    public var spoolRefusing: Bool { spoolFailing.load(ordering: .relaxed) }

    /// Messages in the spool, delivered-but-not-yet-removed ones included (`nil`: no spool).
    public var spoolDepth: Int? { spool?.count }

    /// Where replies, commands and dead letters wait for the broker.
    public var publishQueue: PublishQueue { dispatcher.queue }

    /// Why the bridge cannot do its job right now (`/readyz`); empty when it can.
    public var unreadiness: [String] {
        var problems: [String] = []
        if !brokerConnected {
            problems.append("not connected to the broker\(brokerError.map { ": \($0)" } ?? "")")
        }
        if spoolRefusing { problems.append("the spool refuses messages (full, or the disk fails): see the log") }
        return problems
    }

    /// Brings the gauges up to date; called just before the metrics are read.
    public func recordGauges() {
        gauges.brokerConnected.record(brokerConnected ? 1 : 0)
        gauges.spoolRefusing.record(spoolRefusing ? 1 : 0)
        gauges.spoolMessages.record(spool?.count ?? 0)
        gauges.spoolBytes.record(spool?.bytes ?? 0)
        gauges.waitingForBroker.record(publishQueue.count)
        gauges.queued.record(scheduler.queuedCount)
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

    /// Takes in a Super SIM IP command's payload (`POST /twilio/ipcommands`) the way ``accept(_:)``
    /// takes in a device's MQTT message, with `Source` = `twilio-ipcommand`: when this returns,
    /// the message is in the spool and queued for delivery, so the webhook may answer 200.
    ///
    /// It never goes through the broker to come back: the bridge's credentials may only read a
    /// device's `up` topic, and a broker drops a publish its ACL denies. A copy is queued for
    /// ``TopicTree/ipCommandCopy(_:)`` so the topic tree still shows cellular traffic.
    public func ingestFromIPCommand(_ payload: [UInt8], device: DeviceName) async throws(IntakeRefusal) -> MessageID {
        guard !stopping.load(ordering: .relaxed) else { throw IntakeRefusal(.unavailable, "the bridge is shutting down") }
        guard payload.count <= maxPayload else {
            throw IntakeRefusal(.tooLarge, "payload of \(payload.count) bytes is over the limit of \(maxPayload) bytes (maxPayload)")
        }
        let now = Timestamp.nowMillis()
        let id = idGenerator.withLock { MessageID(millis: now, using: &$0) }
        var message = DeviceMessage(id: id, device: device, topic: tree.up(device), payload: payload, receivedAtMillis: now)
        message.source = .twilioIPCommand
        var seq: Int64?
        if let spool {
            do throws(SpoolError) { seq = try await spool.append(message) } catch {
                throw IntakeRefusal(.unavailable, "the spool refuses it: \(error)")
            }
        }
        counters.received.increment()
        lastIntakeMillis.store(now, ordering: .relaxed)
        registry.noteMessage(device, payload: payload, atMillis: now)
        scheduler.enqueue(Job(message: message, spooled: seq), lane: device.rawValue)
        do throws(SpoolError) {
            _ = try await publishQueue.enqueue(
                OutboundMessage(topic: tree.ipCommandCopy(device), payload: payload, createdAtMillis: now), bounded: true)
        } catch {
            // Only the copy for watchers is missing; the message itself is stored.
            logger.warning("IP command copy not queued for the topic tree", metadata: ["device": "\(device)", "error": "\(error)"])
        }
        return id
    }

    public func run() async throws {
        if let spool { try resume(from: spool) }
        mqtt.handleMessages { [self] message in accept(message) }
        for filter in tree.bridgeSubscriptions { mqtt.addSubscription(filter, qos: .atLeastOnce) }
        mqtt.start()
        logger.info(
            "bridge started",
            metadata: [
                "broker": "\(mqtt.configuration.endpointDescription)", "upstream": "\(upstream.name)",
                "topics": "\(tree.bridgeSubscriptions.joined(separator: " "))",
            ])
        await withTaskGroup(of: Void.self) { group in
            if let spool { group.addTask { await self.commitRemovals(from: spool) } }
            group.addTask {
                await self.publishQueue.run(mqtt: self.mqtt, logger: self.logger) { _ in self.counters.publishRefused.increment() }
            }
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

    /// Takes one message from the broker. Runs on the MQTT client's network thread, before
    /// libmosquitto writes the PUBACK: a device message is on disk when this returns.
    func accept(_ message: MQTTMessage) {
        let now = Timestamp.nowMillis()
        lastIntakeMillis.store(now, ordering: .relaxed)
        let id = idGenerator.withLock { MessageID(millis: now, using: &$0) }
        switch MessageIntake.decide(message, tree: tree, maxPayload: maxPayload, receivedAtMillis: now, id: id) {
        case .deliver(let deviceMessage):
            counters.received.increment()
            registry.noteMessage(deviceMessage.device, payload: deviceMessage.payload, atMillis: now)
            let seq = spool.flatMap { spool in
                persist(["device": "\(deviceMessage.device)"]) { () throws(SpoolError) in try spool.append(deviceMessage) }
            }
            // Once shutting down, a spooled message waits on disk for the next start.
            if seq != nil && stopping.load(ordering: .relaxed) { return }
            scheduler.enqueue(Job(message: deviceMessage, spooled: seq), lane: deviceMessage.device.rawValue)
        case .deadLetter(let deadLetter):
            counters.received.increment()
            queueDeadLetterAtIntake(deadLetter)
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

    /// A message that can never be delivered (bad topic, oversized): its dead letter is queued
    /// for the broker before the broker gets its PUBACK, like any device message. Not refused
    /// for space (it only waits for the broker, whose PUBACKs this thread reads); a disk that
    /// fails holds it back like a device message.
    func queueDeadLetterAtIntake(_ deadLetter: DeadLetter) {
        let outbound = noteDeadLetter(deadLetter)
        let write = { () throws(SpoolError) -> Int64 in try self.publishQueue.enqueue(outbound, bounded: false) }
        if publishQueue.isDurable {
            if persist(["topic": "\(deadLetter.topic.debugDescription)"], write) == nil {
                lose(outbound, error: SpoolError("the bridge stopped while the spool refused it"))
            }
        } else {
            do throws(SpoolError) { _ = try write() } catch { lose(outbound, error: error) }
        }
    }

    /// Writes to the spool, blocking the network thread (and so the broker's PUBACK, and all
    /// further reading) until it is on disk. While the spool refuses (full, disk full,
    /// unwritable) it says so loudly and tries again: backpressure, never a drop.
    /// Returns `nil` only when the bridge is shutting down and the spool still refuses; a
    /// device message is then delivered from memory if time allows, else logged in full.
    func persist(_ about: Logger.Metadata, _ write: () throws(SpoolError) -> Int64) -> Int64? {
        var failures = 0
        while true {
            do throws(SpoolError) {
                let seq = try write()
                if failures > 0 {
                    spoolFailing.store(false, ordering: .relaxed)
                    logger.notice("the spool takes messages again", metadata: ["heldFor": "\(failures * 50)ms"])
                }
                return seq
            } catch {
                if failures == 0 { spoolFailing.store(true, ordering: .relaxed) }
                // The first failure and then every 10 s: loud, but not a flood.
                if failures % 200 == 0 {
                    logger.error(
                        "the spool refuses a message; holding it (and the broker's acknowledgement) until it can be written",
                        metadata: about.merging(["error": "\(error)", "spoolMessages": "\(spool?.count ?? 0)"]) { $1 })
                }
                failures += 1
                if stopping.load(ordering: .relaxed) { return nil }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// Queues everything a previous run left in the spool, oldest first, before anything new.
    func resume(from spool: Spool) throws {
        let entries = try spool.entries()
        for entry in entries {
            scheduler.enqueue(Job(message: entry.message, spooled: entry.seq), lane: entry.message.device.rawValue)
        }
        if !entries.isEmpty || spool.outboundCount > 0 {
            logger.notice(
                "delivering messages left in the spool by the previous run",
                metadata: ["fromDevices": "\(entries.count)", "toPublish": "\(spool.outboundCount)"])
        }
    }

    /// Deletes delivered messages from the spool in batches, every 20 ms.
    func commitRemovals(from spool: Spool) async {
        var failures = 0
        while !Task.isCancelled {
            do { try await Task.sleep(for: .milliseconds(20)) } catch { return }
            do throws(SpoolError) {
                try await spool.commitRemovals()
                failures = 0
            } catch {
                if failures % 500 == 0 { logger.error("cannot remove delivered messages from the spool", metadata: ["error": "\(error)"]) }
                failures += 1
            }
        }
    }

    // MARK: delivery

    func worker() async {
        activeWorkers.add(1, ordering: .relaxed)
        defer {
            activeWorkers.subtract(1, ordering: .relaxed)
            workersOrStopping.changed()
        }
        while let (lane, job) = await scheduler.next() {
            // Once stopping, a spooled message waits on disk for the next start.
            if job.spooled == nil || !stopping.load(ordering: .relaxed) {
                await deliver(job.message, spooled: job.spooled)
            }
            scheduler.complete(lane: lane)
        }
    }

    /// Delivers one message, retrying per ``RetryPolicy`` until it is delivered, rejected or too
    /// old; then it leaves the spool. A message the bridge stops working on (shutdown) stays.
    func deliver(_ message: DeviceMessage, spooled seq: Int64?) async {
        if await attemptDelivery(message), let seq { spool?.remove(seq, message: message) }
    }

    /// `true` once the message is delivered or dead-lettered; `false` if it is left undone.
    func attemptDelivery(_ message: DeviceMessage) async -> Bool {
        let event = IoTEvent(message: message)
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled {
                leave(message, reason: "shutdown timeout reached before delivery")
                return false
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
                if let reply { return await publishReply(reply, to: message.device) }
                return true
            case .reject(let reason):
                return await deadLetter(message, reason: reason, attempts: attempt)
            case .retry(let reason):
                counters.retries.increment()
                let age = Duration.milliseconds(Timestamp.nowMillis() - message.receivedAtMillis)
                switch retryPolicy.decide(afterAttempt: attempt, age: age, jitter: Double.random(in: 0..<1)) {
                case .giveUp:
                    let why = "gave up after \(attempt) attempts over \(age): \(reason)"
                    return await deadLetter(message, reason: why, attempts: attempt)
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
                    guard await pauseBeforeRetry(pause) else {
                        leave(message, reason: "shutting down while waiting to retry: \(reason)")
                        return false
                    }
                }
            }
        }
    }

    /// Waits before a retry. `false` when the task is cancelled, or when the bridge is
    /// stopping and the message is safe in the spool (it need not hold up the shutdown).
    func pauseBeforeRetry(_ pause: Duration) async -> Bool {
        guard spool != nil else {
            // Without a spool memory is the only copy: the pause is kept even while stopping.
            do { try await Task.sleep(for: pause) } catch { return false }
            return true
        }
        let stopped = await workersOrStopping.wait(until: { self.stopping.load(ordering: .relaxed) }, deadline: .now + pause)
        return !stopped && !Task.isCancelled
    }

    /// Queues the upstream's reply for the device. `false` when it could not be stored (the
    /// disk fails): the device message then stays in the spool and is delivered again later,
    /// which asks for the reply again.
    func publishReply(_ reply: String, to device: DeviceName) async -> Bool {
        do throws(CommandError) {
            let route = try await dispatcher.send(reply, to: device, from: .upstreamReply)
            counters.replies.increment()
            logger.debug("reply queued", metadata: ["device": "\(device)", "route": "\(route.rawValue)", "reply": "\(reply)"])
            return true
        } catch {
            logger.error("reply not sent", metadata: ["device": "\(device)", "reply": "\(reply)", "error": "\(error)"])
            return !error.isStorageFailure || spool == nil
        }
    }

    /// Dead-letters a message; `false` when the dead letter could not be stored for
    /// publication, so a spooled message stays in the spool (and is tried again later).
    func deadLetter(_ message: DeviceMessage, reason: String, attempts: Int) async -> Bool {
        let outbound = noteDeadLetter(DeadLetter(message: message, reason: reason, attempts: attempts))
        do throws(SpoolError) {
            // It takes the place of the device message: never refused for space.
            try await publishQueue.enqueue(outbound, bounded: false)
            return true
        } catch {
            lose(outbound, error: error)
            return spool == nil
        }
    }

    /// Counts and logs a dead letter; returns the message to publish.
    func noteDeadLetter(_ deadLetter: DeadLetter) -> OutboundMessage {
        counters.deadLettered.increment()
        logger.warning(
            "dead letter", metadata: ["topic": "\(deadLetter.topic.debugDescription)", "reason": "\(deadLetter.reason)"])
        return OutboundMessage(topic: tree.deadLetter, payload: deadLetter.jsonBytes(), createdAtMillis: Timestamp.nowMillis())
    }

    /// A message for the broker that cannot be kept: the log line carries all of it.
    func lose(_ message: OutboundMessage, error: any Error) {
        counters.lost.increment()
        logger.error(
            "message for the broker not kept",
            metadata: [
                "topic": "\(message.topic.debugDescription)", "error": "\(error)",
                "payload": "\(String(decoding: message.payload, as: UTF8.self))",
            ])
    }

    /// A message the bridge stops working on: a spooled one waits on disk for the next start;
    /// one in memory only is abandoned (and logged in full).
    func leave(_ message: DeviceMessage, reason: String) {
        if spool != nil {
            logger.info("message stays in the spool for the next start", metadata: ["messageId": "\(message.id)", "reason": "\(reason)"])
        } else {
            abandon(message, reason: reason)
        }
    }

    /// Without a spool, a message abandoned at shutdown survives only in the log: log all of it.
    func abandon(_ message: DeviceMessage, reason: String) {
        counters.lost.increment()
        let record = DeadLetter(message: message, reason: reason, attempts: 0).jsonBytes()
        logger.error("message not delivered", metadata: ["reason": "\(reason)", "message": "\(String(decoding: record, as: UTF8.self))"])
    }

    // MARK: shutdown

    /// Stops within `shutdownTimeout`, in the order ``ShutdownStateMachine`` gives: drain the
    /// lanes, publish what waits for the broker, announce `offline`, disconnect, let the workers
    /// finish, close up. Each wait ends on the event it waits for, or at the deadline.
    func shutDown() async {
        let deadline = ContinuousClock.now + shutdownTimeout
        logger.info("bridge shutting down", metadata: ["queued": "\(scheduler.queuedCount)", "inFlight": "\(scheduler.inFlightCount)"])
        stopping.store(true, ordering: .relaxed)
        workersOrStopping.changed()
        var machine = ShutdownStateMachine(hasSpool: spool != nil)
        var action = machine.begin()
        while action != .none {
            switch action {
            case .drainLanes(let untilQuiet):
                let outcome = await drainLanes(untilQuiet: untilQuiet, deadline: deadline)
                action = machine.lanesDrained(outcome, connected: mqtt.isConnected)
            case .drainPublishQueue:
                let emptied = await publishQueue.waitUntilEmpty(deadline: deadline)
                if !emptied { logger.notice("messages still wait for the broker", metadata: ["waiting": "\(publishQueue.count)"]) }
                action = machine.publishQueueDrained(emptied ? .completed : .deadlineReached, connected: mqtt.isConnected)
            case .announceOffline:
                await announceOffline()
                action = machine.offlineAnnounced()
            case .disconnect:
                // No message is accepted after this returns.
                await mqtt.close()
                scheduler.finish()
                action = machine.disconnected()
            case .finishWorkers:
                let finished = await workersOrStopping.wait(until: { self.activeWorkers.load(ordering: .relaxed) == 0 }, deadline: deadline)
                action = machine.workersFinished(finished ? .completed : .deadlineReached)
            case .closeUp:
                await closeUp()
                action = machine.closedUp()
            case .none:
                break
            }
        }
    }

    /// Waits until the lanes are idle; `untilQuiet` (no spool: memory is the only copy) also
    /// until no message has arrived for 100 ms, so a burst still arriving is delivered too.
    func drainLanes(untilQuiet: Bool, deadline: ContinuousClock.Instant) async -> ShutdownStateMachine.Outcome {
        while true {
            guard await scheduler.waitUntilIdle(deadline: deadline) else { return .deadlineReached }
            guard untilQuiet else { return .completed }
            let quietFor = Duration.milliseconds(Timestamp.nowMillis() - lastIntakeMillis.load(ordering: .relaxed))
            if quietFor >= .milliseconds(100) { return .completed }
            let until = min(deadline, .now + (.milliseconds(100) - quietFor))
            try? await Task.sleep(until: until)
            if ContinuousClock.now >= deadline { return .deadlineReached }
        }
    }

    /// `offline`, retained, as the last will says: the broker sends the will only when a client vanishes.
    func announceOffline() async {
        guard let will = mqtt.configuration.will else { return }
        do {
            try await mqtt.publish(topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, timeout: .seconds(2))
        } catch {
            logger.warning("could not publish offline status", metadata: ["error": "\(error)"])
        }
    }

    /// Spooled messages stay on disk for the next start; what only memory held is logged in full.
    func closeUp() async {
        for job in scheduler.removeAllQueued() where job.spooled == nil {
            abandon(job.message, reason: "shutdown timeout reached before delivery")
        }
        if !publishQueue.isDurable {
            let left = MQTTError(.closed, "the bridge stopped before the broker took it")
            for entry in (try? publishQueue.pending(limit: .max)) ?? [] { lose(entry.message, error: left) }
        }
        if let spool {
            do throws(SpoolError) { try await spool.commitRemovals() } catch {
                logger.warning("delivered messages stay in the spool and will be delivered again", metadata: ["error": "\(error)"])
            }
            spool.close()
            logger.info("spool closed", metadata: ["messages": "\(spool.count)"])
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
            if let spool { metadata["spooled"] = "\(spool.count)" }
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
