import DTwinContract
import DTwinMQTT
import DTwinTwilio
import Logging

/// Sends a command to a device the way that device listens: `<prefix>/<dev>/down` over MQTT,
/// or a Twilio Super SIM IP command for devices configured `cellular: true`. Every command
/// path (cloud replies, SMS, the API) goes through here.
public final class CommandDispatcher: Sendable {
    /// How a command went out.
    public enum Route: String, Sendable, Equatable {
        case mqtt
        case ipCommand = "ip-command"
        /// A cellular device without Twilio credentials: logged, not sent.
        case dryRun = "dry-run"
    }

    /// Twilio refuses IP command payloads over 1300 bytes.
    public static let maxIPCommandBytes = 1300

    let mqtt: MQTTClient
    let tree: TopicTree
    let cellular: Set<DeviceName>
    let twilio: TwilioClient?
    let logger: Logger

    public init(mqtt: MQTTClient, tree: TopicTree, cellular: Set<DeviceName>, twilio: TwilioClient?, logger: Logger) {
        self.mqtt = mqtt
        self.tree = tree
        self.cellular = cellular
        self.twilio = twilio
        self.logger = logger
    }

    public func isCellular(_ device: DeviceName) -> Bool { cellular.contains(device) }

    /// Sends `command`; returns once the broker (PUBACK) or Twilio (201) has accepted it.
    @discardableResult
    public func send(_ command: String, to device: DeviceName) async throws(CommandError) -> Route {
        guard cellular.contains(device) else {
            do {
                try await mqtt.publish(topic: tree.down(device), payload: Array(command.utf8), qos: .atLeastOnce, timeout: .seconds(10))
            } catch {
                throw CommandError(device: device, reason: "not published on \(tree.down(device)): \(error)")
            }
            return .mqtt
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
    public var description: String { "command for \(device): \(reason)" }
}
