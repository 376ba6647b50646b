import DTwinMQTT
import DTwinSpool
import Logging

extension PublishQueue {
    /// Messages taken from storage per round.
    static let batchSize = 256

    /// Publishes what waits, whenever the broker is connected, until cancelled. A message
    /// leaves storage only after its PUBACK; one that fails is tried again at the next round
    /// (every 250 ms while something waits, and at once when something new is queued).
    ///
    /// A publish the broker refuses (MQTT 5 PUBACK reason code, usually its ACL) is a failed
    /// delivery like any other: the message stays, the refusal is logged and counted
    /// (`refusals`), and it is tried again every 5 s, so fixing the ACL lets it through.
    func run(mqtt: MQTTClient, logger: Logger, refusals: @escaping @Sendable (MQTTError) -> Void = { _ in }) async {
        var failing = false
        var refused = false
        while !Task.isCancelled {
            await doorbell.wait(timeout: refused ? .seconds(5) : count > 0 ? .milliseconds(250) : .seconds(5))
            refused = false
            guard !Task.isCancelled, mqtt.isConnected else { continue }
            // Until nothing waits: `count` is exact once a message is stored, and one stored
            // after this look rings the doorbell, so no read is needed to find the queue empty
            // (a read of the spool costs about 50,000 instructions, callgrind).
            while !Task.isCancelled, count > 0 {
                let batch: [Spool.OutboundEntry]
                do throws(SpoolError) {
                    batch = try pending(limit: Self.batchSize)
                } catch {
                    logger.error("cannot read the messages waiting for the broker", metadata: ["error": "\(error)"])
                    break
                }
                guard !batch.isEmpty else { break }
                let (done, failure) = await publish(batch, mqtt: mqtt, logger: logger)
                do throws(SpoolError) {
                    try await remove(done)
                } catch {
                    // They were published; if the file keeps them, they are published again.
                    logger.error("cannot remove published messages from the spool", metadata: ["error": "\(error)"])
                    break
                }
                if let failure {
                    if failure.code == .publishRefused {
                        refused = true
                        refusals(failure)
                        logger.error(
                            "the broker refused a publish; the message is kept and tried again every 5 s",
                            metadata: ["error": "\(failure)", "waiting": "\(count)"])
                    } else if !failing {
                        logger.warning(
                            "publishing waits for the broker; messages are kept until it acknowledges them",
                            metadata: ["error": "\(failure)", "waiting": "\(count)"])
                    }
                    failing = true
                    break
                }
                if failing {
                    logger.notice("publishing resumed", metadata: ["waiting": "\(count)"])
                    failing = false
                }
            }
        }
    }

    /// Publishes `batch` one at a time per topic, the topics side by side. Returns what the
    /// broker acknowledged, and the first failure (a topic stops at its first failure, so the
    /// messages after it keep their order for the next round).
    func publish(
        _ batch: [Spool.OutboundEntry], mqtt: MQTTClient, logger: Logger
    ) async -> (done: [Spool.OutboundEntry], failure: MQTTError?) {
        var byTopic: [String: [Spool.OutboundEntry]] = [:]
        for entry in batch { byTopic[entry.message.topic, default: []].append(entry) }
        return await withTaskGroup(of: ([Spool.OutboundEntry], MQTTError?).self) { group in
            for entries in byTopic.values {
                group.addTask {
                    var done: [Spool.OutboundEntry] = []
                    for entry in entries {
                        do throws(MQTTError) {
                            try await Self.publish(entry.message, mqtt: mqtt)
                            done.append(entry)
                        } catch  where error.code == .invalidArgument {
                            // libmosquitto will never take it (bad topic, bad size): retrying
                            // forever would block this topic. Logged in full, then dropped.
                            logger.error(
                                "message cannot be published; dropped",
                                metadata: [
                                    "topic": "\(entry.message.topic.debugDescription)", "error": "\(error)",
                                    "payload": "\(String(decoding: entry.message.payload, as: UTF8.self).debugDescription)",
                                ])
                            done.append(entry)
                        } catch {
                            return (done, error)
                        }
                    }
                    return (done, nil)
                }
            }
            var done: [Spool.OutboundEntry] = []
            var failure: MQTTError?
            for await (published, error) in group {
                done += published
                failure = failure ?? error
            }
            return (done, failure)
        }
    }

    static func publish(_ message: OutboundMessage, mqtt: MQTTClient) async throws(MQTTError) {
        do {
            try await mqtt.publish(
                topic: message.topic, payload: message.payload, qos: .atLeastOnce, retain: message.retain, timeout: .seconds(30))
        } catch let error as MQTTError {
            throw error
        } catch {
            throw MQTTError(.other, "\(error)")
        }
    }
}
