import CMosquitto
import Foundation

/// Why an MQTT operation failed. Messages are for people: they name the broker and the cause,
/// never a password.
public struct MQTTError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The TCP connection could not be made (refused, unreachable, DNS).
        case unreachable
        /// The broker answered CONNACK with a refusal (bad credentials, not authorised, …).
        case refused
        /// The TLS handshake or certificate check failed.
        case tls
        /// The client lost its connection or was not connected.
        case notConnected
        /// The broker refused a subscription (usually an ACL).
        case subscriptionRefused
        /// The broker acknowledged a publish with a failure reason code (MQTT 5; usually an ACL):
        /// it was not delivered to anyone.
        case publishRefused
        case timeout
        case closed
        case invalidArgument
        case other
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Refusals and TLS failures will not cure themselves by retrying quickly.
    public var isConfigurationProblem: Bool { code == .refused || code == .tls }

    /// Maps a libmosquitto return code (and errno, for `MOSQ_ERR_ERRNO`) to an error.
    static func mosquitto(_ rc: Int32, errno: Int32, context: String) -> MQTTError {
        switch rc {
        case Int32(MOSQ_ERR_ERRNO.rawValue):
            return MQTTError(.unreachable, "\(context): \(String(cString: strerror(errno)))")
        case Int32(MOSQ_ERR_EAI.rawValue):
            return MQTTError(.unreachable, "\(context): the host name could not be resolved")
        case Int32(MOSQ_ERR_TLS.rawValue):
            return MQTTError(.tls, "\(context): TLS handshake or certificate verification failed")
        case Int32(MOSQ_ERR_CONN_REFUSED.rawValue), Int32(MOSQ_ERR_AUTH.rawValue):
            return MQTTError(.refused, "\(context): the broker refused the connection")
        case Int32(MOSQ_ERR_NO_CONN.rawValue), Int32(MOSQ_ERR_CONN_LOST.rawValue):
            return MQTTError(.notConnected, "\(context): not connected to the broker")
        case Int32(MOSQ_ERR_INVAL.rawValue), Int32(MOSQ_ERR_PAYLOAD_SIZE.rawValue),
            Int32(MOSQ_ERR_MALFORMED_UTF8.rawValue):
            return MQTTError(.invalidArgument, "\(context): \(String(cString: mosquitto_strerror(rc)))")
        default:
            return MQTTError(.other, "\(context): \(String(cString: mosquitto_strerror(rc)))")
        }
    }

    /// Maps a CONNACK code to an error: MQTT 3.1.1's return codes (1-5) and MQTT 5's reason
    /// codes (128 and up) have their own texts.
    static func connack(_ rc: Int32, endpoint: String) -> MQTTError {
        let reason = String(cString: rc >= 128 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc))
        return MQTTError(.refused, "broker \(endpoint) refused the connection: \(reason)")
    }

    /// A PUBACK with a failure reason code (MQTT 5: 128 and up).
    static func publishRefused(_ reasonCode: Int32, topic: String?) -> MQTTError {
        let reason = String(cString: mosquitto_reason_string(reasonCode))
        let hint = reasonCode == Int32(MQTT_RC_NOT_AUTHORIZED.rawValue) ? " (the broker's ACL does not let this client publish there)" : ""
        return MQTTError(
            .publishRefused, "the broker refused the publish\(topic.map { " on \($0.debugDescription)" } ?? ""): \(reason) (\(reasonCode))\(hint)")
    }
}
