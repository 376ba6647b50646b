import DTwinContract
import DTwinMQTT
import DTwinSpool
import Logging
import Synchronization

// Shutdown: ``ShutdownStateMachine`` says the order; these perform its actions.
extension BridgeService {
    /// Stops within `shutdownTimeout`, in the order ``ShutdownStateMachine`` gives: drain the
    /// lanes, publish what waits for the broker, announce `offline`, disconnect, let the workers
    /// finish, close up. Each wait ends on the event it waits for, or at the deadline.
    func shutDown() async {
        let deadline = ContinuousClock.now + shutdownTimeout
        logger.info(
            "bridge shutting down", metadata: ["queued": "\(delivery.scheduler.queuedCount)", "inFlight": "\(delivery.scheduler.inFlightCount)"])
        delivery.stop()
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
                delivery.scheduler.finish()
                action = machine.disconnected()
            case .finishWorkers:
                let finished = await delivery.workersOrStopping.wait(
                    until: { self.delivery.activeWorkers.load(ordering: .relaxed) == 0 }, deadline: deadline)
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
            guard await delivery.scheduler.waitUntilIdle(deadline: deadline) else { return .deadlineReached }
            guard untilQuiet else { return .completed }
            let quietFor = Duration.milliseconds(Timestamp.nowMillis() - lastIntakeMillis.load(ordering: .relaxed))
            if quietFor >= .milliseconds(100) { return .completed }
            let until = min(deadline, .now + (.milliseconds(100) - quietFor))
            try? await Task.sleep(until: until)
            if ContinuousClock.now >= deadline { return .deadlineReached }
        }
    }

    /// `offline`, retained, as the last will says: the broker sends the will only when a client
    /// vanishes. The last instance of a group that is online says so for the group too.
    func announceOffline() async {
        guard let will = mqtt.configuration.will else { return }
        guard mqtt.isConnected else {
            // The message would wait for a broker that may come back only after this process has gone.
            logger.warning("could not publish offline status", metadata: ["error": "not connected to the broker"])
            return
        }
        var topics = [will.topic]
        if statusBook.withLock(\.isLastOnline) { topics.append(tree.bridgeStatus) }
        for topic in topics {
            do {
                try await mqtt.publish(topic: topic, payload: will.payload, qos: will.qos, retain: will.retain, timeout: .seconds(2))
            } catch {
                logger.warning("could not publish offline status", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    /// Spooled messages stay on disk for the next start; what only memory held is logged in full.
    func closeUp() async {
        for job in delivery.scheduler.removeAllQueued() where job.spooled == nil {
            delivery.abandon(job.message, reason: "shutdown timeout reached before delivery")
        }
        if !publishQueue.isDurable {
            let left = MQTTError(.closed, "the bridge stopped before the broker took it")
            for entry in (try? publishQueue.pending(limit: .max)) ?? [] { delivery.lose(entry.message, error: left) }
        }
        if let spool {
            do throws(SpoolError) { try await spool.commitRemovals() } catch {
                logger.warning("delivered messages stay in the spool and will be delivered again", metadata: ["error": "\(error)"])
            }
            // What is left is on disk when the bridge has stopped, even with `spool.sync: normal`.
            do throws(SpoolError) { try await spool.checkpoint() } catch {
                logger.warning("the spool's last writes wait in its WAL", metadata: ["error": "\(error)"])
            }
            spool.close()
            logger.info("spool closed", metadata: ["messages": "\(spool.count)"])
        }
    }
}
