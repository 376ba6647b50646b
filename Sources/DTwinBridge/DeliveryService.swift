import DTwinContract
import DTwinSpool
import DTwinUpstream
import Logging
import ServiceLifecycle
import Synchronization

/// Delivery: the workers take a message from its device's lane, send it upstream, retry per the
/// ``RetryPolicy``, queue the reply or the dead letter, and let it leave the spool. One delivery
/// at a time per device, in order; up to `upstream.concurrency` devices at once.
///
/// A `Service` placed before the bridge in the service group: at shutdown the bridge stops
/// taking messages and drains the lanes while these workers still run; the bridge then finishes
/// the scheduler, the workers end, and this service returns.
public final class DeliveryService: Service, Sendable {
    struct Job: Sendable {
        var message: DeviceMessage
        /// The message's sequence number in the spool (`nil`: in memory only).
        var spooled: Int64?
    }

    let scheduler = DeliveryScheduler<Job>()
    let activeWorkers = Atomic<Int>(0)
    /// Rung when a worker exits, and when ``stopping`` is set: the shutdown and the retry
    /// pauses wait on it instead of polling.
    let workersOrStopping = ChangeSignal()
    let stopping = Atomic<Bool>(false)
    let upstream: any Upstream
    let spool: Spool?
    let publishQueue: PublishQueue
    let dispatcher: CommandDispatcher
    /// Where an upstream answer's `desired` goes (`nil` without a twin table).
    let twins: TwinService?
    let counters: BridgeCounters
    /// Dead letters, for live views.
    let live: LiveEvents
    let tree: TopicTree
    let retryPolicy: RetryPolicy
    let concurrency: Int
    let logger: Logger

    init(
        upstream: any Upstream, spool: Spool?, publishQueue: PublishQueue, dispatcher: CommandDispatcher, twins: TwinService?,
        counters: BridgeCounters, live: LiveEvents, tree: TopicTree, retryPolicy: RetryPolicy, concurrency: Int, logger: Logger
    ) {
        self.twins = twins
        self.live = live
        self.upstream = upstream
        self.spool = spool
        self.publishQueue = publishQueue
        self.dispatcher = dispatcher
        self.counters = counters
        self.tree = tree
        self.retryPolicy = retryPolicy
        self.concurrency = concurrency
        self.logger = logger
    }

    /// Runs the workers, each on one of the upstream's event loops when it has them, until the
    /// scheduler is finished and empty (the bridge's shutdown) or graceful shutdown comes first.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                let executors = self.upstream.workerExecutors
                for index in 0..<self.concurrency {
                    let executor = executors.isEmpty ? nil : executors[index % executors.count]
                    group.addTask(executorPreference: executor) { await self.worker() }
                }
            }
        }
        // The workers end during the bridge's shutdown, before this service's turn comes. A
        // service that returns before its turn makes the group cancel every other one (the
        // bridge closing its spool included), so this one waits for its turn.
        try? await gracefulShutdown()
    }

    /// From now on spooled messages are passed over (they wait on disk) and retry pauses end.
    func stop() {
        stopping.store(true, ordering: .relaxed)
        workersOrStopping.changed()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func worker() async {
        activeWorkers.add(1, ordering: .relaxed)
        defer {
            activeWorkers.subtract(1, ordering: .relaxed)
            workersOrStopping.changed()
        }
        var work = await scheduler.next()
        while let (lane, job) = work {
            // Once stopping, a spooled message waits on disk for the next start.
            if job.spooled == nil || !stopping.load(ordering: .relaxed) {
                await deliver(job.message, spooled: job.spooled)
            }
            if let next = scheduler.completeAndTakeNext(lane: lane) {
                work = next
            } else {
                work = await scheduler.next()
            }
        }
    }

    /// Delivers one message, retrying per ``RetryPolicy`` until it is delivered, rejected or too
    /// old; then it leaves the spool. A message the bridge stops working on (shutdown) stays.
    func deliver(_ message: DeviceMessage, spooled seq: Int64?) async {
        if await attemptDelivery(message), let seq { spool?.remove(seq, message: message) }
    }

    /// `true` once the message is delivered or dead-lettered; `false` if it is left undone.
    func attemptDelivery(_ message: DeviceMessage) async -> Bool {
        var attempt = 0
        while true {
            attempt += 1
            if Task.isCancelled {
                leave(message, reason: "shutdown timeout reached before delivery")
                return false
            }
            switch await upstream.deliver(message: message, logger: logger) {
            case .delivered(let reply, let note, let desired):
                counters.delivered.increment()
                if let note {
                    logger.warning("upstream answer ignored for replies", metadata: ["device": "\(message.device)", "reason": "\(note)"])
                }
                if attempt > 1 {
                    logger.info("delivered after retries", metadata: ["messageId": "\(message.id)", "attempts": "\(attempt)"])
                }
                if let desired, !(await setDesired(desired, for: message.device)) { return false }
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

    /// Sets the desired state the upstream asked for in the device's twin. `false` when it could
    /// not be stored (the message stays in the spool and is delivered again, which asks again);
    /// a desired state the device does not take is logged and dropped, like a bad reply.
    func setDesired(_ desired: [String: JSONValue], for device: DeviceName) async -> Bool {
        guard let twins else {
            logger.warning("upstream asked for a desired state, but this bridge keeps no twins", metadata: ["device": "\(device)"])
            return true
        }
        do {
            switch try await twins.setDesired(desired, for: device, ifVersion: nil) {
            case .success(let document):
                logger.info("upstream set a desired state", metadata: ["device": "\(device)", "version": "\(document.version)"])
            case .failure(let refusal):
                logger.warning("upstream's desired state refused", metadata: ["device": "\(device)", "reason": "\(refusal)"])
            }
            return true
        } catch {
            logger.error("upstream's desired state not stored", metadata: ["device": "\(device)", "error": "\(error)"])
            return false
        }
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
        live.noteDeadLetter(deadLetter)
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
}
