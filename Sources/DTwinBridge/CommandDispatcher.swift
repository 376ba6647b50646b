import DTwinContract
import DTwinSpool
import DTwinTwilio
import Logging

/// Sends a command to a device the way that device listens: `<prefix>/<dev>/down` over MQTT,
/// or a Twilio Super SIM IP command for devices configured `cellular: true`. Every command
/// path (cloud replies, SMS, the API) goes through here.
public final class CommandDispatcher: Sendable {
    /// How a command went out.
    public enum Route: String, Sendable, Equatable {
        /// The broker acknowledged it.
        case mqtt
        /// Stored; published as soon as the broker takes it (it is down, or slow).
        case queued
        case ipCommand = "ip-command"
        /// A cellular device without Twilio credentials: logged, not sent.
        case dryRun = "dry-run"
    }

    /// Who asks for a command, which decides how it is queued.
    public enum Origin: Sendable {
        /// A person (SMS, the API): refused when the spool is full, so they can try again;
        /// the answer waits a moment for the broker's acknowledgement to say "sent".
        case person
        /// The upstream's reply to a device message: always kept (it takes the place of the
        /// message, which leaves the spool), never waited for.
        case upstreamReply
        /// A twin's pending command, sent when its device is back or has drifted: always kept,
        /// never waited for (the twin's loop serves every device).
        case twin
    }

    /// Twilio refuses IP command payloads over 1300 bytes.
    public static let maxIPCommandBytes = 1300

    /// How long a person's command waits for the broker before it is reported as queued.
    static let acknowledgementWait = Duration.seconds(3)

    public let queue: PublishQueue
    let tree: TopicTree
    let cellular: Set<DeviceName>
    let twilio: TwilioClient?
    let logger: Logger

    public init(queue: PublishQueue, tree: TopicTree, cellular: Set<DeviceName>, twilio: TwilioClient?, logger: Logger) {
        self.queue = queue
        self.tree = tree
        self.cellular = cellular
        self.twilio = twilio
        self.logger = logger
    }

    public func isCellular(_ device: DeviceName) -> Bool { cellular.contains(device) }

    /// Where MQTT commands for `device` are published.
    public func topic(for device: DeviceName) -> String { tree.down(device) }

    /// Sends `command`. Over MQTT it is stored first (``PublishQueue``), so once this returns
    /// it will reach the broker even across a broker outage or a restart of the bridge.
    @discardableResult
    public func send(_ command: String, to device: DeviceName, from origin: Origin = .person) async throws(CommandError) -> Route {
        guard cellular.contains(device) else {
            let message = OutboundMessage(topic: tree.down(device), payload: Array(command.utf8), createdAtMillis: Timestamp.nowMillis())
            let seq: Int64
            do throws(SpoolError) {
                seq = try await queue.enqueue(message, bounded: origin == .person)
            } catch {
                throw CommandError(device: device, reason: "not stored for \(tree.down(device)): \(error)", isStorageFailure: true)
            }
            guard origin == .person else { return .queued }
            return await queue.waitUntilPublished(seq, timeout: Self.acknowledgementWait) ? .mqtt : .queued
        }
        guard command.utf8.count <= Self.maxIPCommandBytes else {
            throw CommandError(device: device, reason: "an IP command carries at most \(Self.maxIPCommandBytes) bytes")
        }
        guard let twilio else {
            logger.notice("IP command dry run (no Twilio credentials): not sent", metadata: ["device": "\(device)", "command": "\(command)"])
            return .dryRun
        }
        do throws(TwilioError) {
            let accepted = try await twilio.sendIPCommand(sim: device.rawValue, payload: command)
            logger.info("IP command accepted by Twilio", metadata: ["device": "\(device)", "sid": "\(accepted.sid)"])
            return .ipCommand
        } catch {
            throw CommandError(device: device, reason: "Twilio IP command failed: \(error)")
        }
    }
}

/// Why a command did not reach its way out.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    public let device: DeviceName
    public let reason: String
    /// The command could not be stored (spool full, or the disk fails), as opposed to refused
    /// by its route (Twilio).
    public let isStorageFailure: Bool

    public init(device: DeviceName, reason: String, isStorageFailure: Bool = false) {
        self.device = device
        self.reason = reason
        self.isStorageFailure = isStorageFailure
    }

    public var description: String { "command for \(device): \(reason)" }
}
