import DTwinContract
import DTwinMQTT
import DTwinSpool
import DTwinTwilio
import Foundation
import Logging
import Synchronization

// Intake: every device message enters here, on the MQTT network thread (``accept(_:)``) or
// from a Super SIM webhook (``ingestFromIPCommand(_:device:)``), and is on disk and in its lane
// before it is acknowledged.
extension BridgeService {
    /// Takes one message from the broker. Runs on the MQTT client's network thread, before
    /// libmosquitto writes the PUBACK: a device message is on disk when this returns.
    func accept(_ message: MQTTMessage) {
        let now = Timestamp.nowMillis()
        lastIntakeMillis.store(now, ordering: .relaxed)
        let id = messageIDs.withLock { $0.next(millis: now) }
        switch MessageIntake.decide(message, tree: tree, maxPayload: maxPayload, receivedAtMillis: now, id: id) {
        case .deliver(let deviceMessage):
            let seq = spool.flatMap { spool in
                persist(["device": "\(deviceMessage.device)"]) { () throws(SpoolError) in try spool.append(deviceMessage) }
            }
            admit(deviceMessage, spooled: seq)
        case .deadLetter(let deadLetter):
            counters.received.increment()
            queueDeadLetterAtIntake(deadLetter)
        case .sms(let device, let text):
            if let smsRelay {
                smsRelay.relay(text, about: device, origin: .device, logger: logger)
            } else {
                logger.warning("SMS from a device ignored: Twilio is not set up in this process", metadata: ["device": "\(device)"])
            }
        case .twinSet(let device, let payload):
            applyTwinSet(payload, device: device)
        case .deviceStatus(let device, let status):
            registry.noteStatus(device, status)
            twins?.noteStatus(device, status, atMillis: now)
            live.note(.status(device: device.rawValue, status: status, atMillis: now))
            logger.info("device status", metadata: ["device": "\(device)", "status": "\(status)"])
        case .bridgeStatus(let status, let retained, let instance):
            noteBridgeStatus(status, retained: retained, instance: instance)
        case .ownTopic:
            break
        case .ignore(let reason):
            logger.warning("message ignored", metadata: ["topic": "\(message.topic.debugDescription)", "reason": "\(reason)"])
        }
    }

    /// How long the network thread holds a `state/set` (and all reading behind it) for the twin
    /// store: a local SQLite write takes milliseconds, DynamoDB tens of them.
    static let twinSetWait = Duration.seconds(10)

    /// `<dev>/state/set`: applied (or refused, with the reason on `<dev>/state/rejected`) before
    /// the broker gets its PUBACK. Only a twin store slower than ``twinSetWait`` lets the PUBACK
    /// go first; the outcome still shows on `state` or `state/rejected` when the store answers.
    func applyTwinSet(_ payload: [UInt8], device: DeviceName) {
        guard let twins else {
            let rejection = TwinRejection(
                code: 501, message: "this bridge keeps no twins: it needs a twin table here (upstream.mode: local, or store.kind: dynamodb)")
            do throws(SpoolError) { try publishQueue.enqueue(.twinRejection(rejection, device: device, tree: tree), bounded: false) } catch {
                logger.error("the refusal of a state/set cannot be published", metadata: ["device": "\(device)", "error": "\(error)"])
            }
            return
        }
        if !blockingWait(timeout: Self.twinSetWait, { await twins.applySetRequest(payload, for: device) }) {
            logger.warning(
                "the twin store is slow: a state/set is acknowledged before it is stored; its outcome will show on state or state/rejected",
                metadata: ["device": "\(device)", "waited": "\(Self.twinSetWait)"])
        }
    }

    /// A bridge status seen on the broker (``BridgeStatusBook``): the topics this bridge keeps
    /// `online` while it runs are put right at once if they say anything else (someone else's
    /// doing, or a last will left by an earlier run, seen at subscribe time), so nobody can make
    /// the bridge look down. Its own `offline` comes only once it is stopping, and is left alone.
    func noteBridgeStatus(_ status: String, retained: Bool, instance: String?) {
        let (repairs, peerChanged) = statusBook.withLock { book in
            let before = instance.flatMap { book.instances[$0] }
            let repairs = book.note(status, instance: instance, stopping: delivery.isStopping)
            return (repairs, instance != nil && instance != book.instance && before != status)
        }
        if peerChanged, let instance {
            // Operators want to hear of a peer going away (its last will) or coming back.
            logger.notice("another instance of the group is \(status)", metadata: ["instance": "\(instance)"])
        }
        guard let birth = mqtt.configuration.birth else { return }
        for repair in repairs {
            let topic = repair == .ownStatus ? birth.topic : tree.bridgeStatus
            let metadata: Logger.Metadata = ["topic": "\(topic)", "status": "\(status.debugDescription)"]
            if repair == .groupStatus {
                logger.info("the bridge group's status is not online while this instance runs; publishing online", metadata: metadata)
            } else if retained {
                logger.info("an earlier bridge status was left on the broker; publishing online", metadata: metadata)
            } else {
                logger.warning("someone else published the bridge's status; publishing online again", metadata: metadata)
            }
            do {
                try mqtt.publishWithoutWaiting(topic: topic, payload: birth.payload, qos: birth.qos, retain: true)
            } catch {
                logger.error("cannot publish the bridge's online status", metadata: ["topic": "\(topic)", "error": "\(error)"])
            }
        }
    }

    /// A device message that is stored (or, without a spool, held): counted, noted for its
    /// device, and queued in its lane. Once shutting down, a spooled message waits on disk for
    /// the next start instead. Both entry points (MQTT, Super SIM webhooks) end here.
    func admit(_ message: DeviceMessage, spooled seq: Int64?) {
        counters.received.increment()
        let decoded = noteWhatItSays(message)
        if decoded.kind == .reading, let value = decoded.value {
            live.note(.reading(device: message.device.rawValue, value: value, unit: decoded.unit, atMillis: message.receivedAtMillis))
        }
        if seq != nil && delivery.isStopping { return }
        delivery.scheduler.enqueue(DeliveryService.Job(message: message, spooled: seq), lane: message.device.rawValue)
    }

    /// Tells the registry (its summary) and the twin (its reported state) what a device message
    /// says, decoded once for both; returns it decoded.
    @discardableResult
    func noteWhatItSays(_ message: DeviceMessage) -> DevicePayload {
        let decoded = DevicePayload.decode(message.payload)
        registry.noteMessage(message.device, decoded: decoded, atMillis: message.receivedAtMillis)
        twins?.noteMessage(message.device, payload: decoded, atMillis: message.receivedAtMillis)
        return decoded
    }

    /// A message that can never be delivered (bad topic, oversized): its dead letter is queued
    /// for the broker before the broker gets its PUBACK, like any device message. Not refused
    /// for space (it only waits for the broker, whose PUBACKs this thread reads); a disk that
    /// fails holds it back like a device message.
    func queueDeadLetterAtIntake(_ deadLetter: DeadLetter) {
        let outbound = delivery.noteDeadLetter(deadLetter)
        let write = { () throws(SpoolError) -> Int64 in try self.publishQueue.enqueue(outbound, bounded: false) }
        if publishQueue.isDurable {
            if persist(["topic": "\(deadLetter.topic.debugDescription)"], write) == nil {
                delivery.lose(outbound, error: SpoolError("the bridge stopped while the spool refused it"))
            }
        } else {
            do throws(SpoolError) { _ = try write() } catch { delivery.lose(outbound, error: error) }
        }
    }

    /// Writes to the spool, blocking the network thread (and so the broker's PUBACK, and all
    /// further reading) until it is on disk. While the spool refuses (full, disk full,
    /// unwritable) it says so loudly and tries again: backpressure, never a drop.
    /// Returns `nil` only when the bridge is shutting down and the spool still refuses; a
    /// device message is then delivered from memory if time allows, else logged in full.
    /// `about` is worked out only for a log line (every device message comes through here).
    func persist(_ about: @autoclosure () -> Logger.Metadata, _ write: () throws(SpoolError) -> Int64) -> Int64? {
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
                        metadata: about().merging(["error": "\(error)", "spoolMessages": "\(spool?.count ?? 0)"]) { $1 })
                }
                failures += 1
                if delivery.isStopping { return nil }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    /// Queues everything a previous run left in the spool, oldest first, before anything new.
    func resume(from spool: Spool) throws {
        let entries = try spool.entries()
        for entry in entries {
            // The previous run may have stopped before its twin writer wrote what these said
            // (it writes every 250 ms). Noted again with the time they came in; whatever was
            // written since is newer and stays.
            noteWhatItSays(entry.message)
            delivery.scheduler.enqueue(DeliveryService.Job(message: entry.message, spooled: entry.seq), lane: entry.message.device.rawValue)
        }
        if !entries.isEmpty || spool.outboundCount > 0 {
            logger.notice(
                "delivering messages left in the spool by the previous run",
                metadata: ["fromDevices": "\(entries.count)", "toPublish": "\(spool.outboundCount)"])
        }
    }

    /// Takes in a Super SIM IP command's payload (`POST /twilio/ipcommands`) the way ``accept(_:)``
    /// takes in a device's MQTT message, with `Source` = `twilio-ipcommand`: when this returns,
    /// the message is in the spool and queued for delivery, so the webhook may answer 200.
    ///
    /// It never goes through the broker to come back: the bridge's credentials may only read a
    /// device's `up` topic, and a broker drops a publish its ACL denies. A copy is queued for
    /// ``TopicTree/ipCommandCopy(_:)`` so the topic tree still shows cellular traffic.
    public func ingestFromIPCommand(_ payload: [UInt8], device: DeviceName) async throws(IntakeRefusal) -> MessageID {
        guard !delivery.isStopping else { throw IntakeRefusal(.unavailable, "the bridge is shutting down") }
        guard payload.count <= maxPayload else {
            throw IntakeRefusal(.tooLarge, "payload of \(payload.count) bytes is over the limit of \(maxPayload) bytes (maxPayload)")
        }
        let now = Timestamp.nowMillis()
        let id = messageIDs.withLock { $0.next(millis: now) }
        var message = DeviceMessage(id: id, device: device, topic: tree.up(device), payload: payload, receivedAtMillis: now)
        message.source = .twilioIPCommand
        var seq: Int64?
        if let spool {
            do throws(SpoolError) { seq = try await spool.append(message) } catch {
                throw IntakeRefusal(.unavailable, "the spool refuses it: \(error)")
            }
        }
        lastIntakeMillis.store(now, ordering: .relaxed)
        admit(message, spooled: seq)
        do throws(SpoolError) {
            _ = try await publishQueue.enqueue(
                OutboundMessage(topic: tree.ipCommandCopy(device), payload: payload, createdAtMillis: now), bounded: true)
        } catch {
            // Only the copy for watchers is missing; the message itself is stored.
            logger.warning("IP command copy not queued for the topic tree", metadata: ["device": "\(device)", "error": "\(error)"])
        }
        return id
    }
}
