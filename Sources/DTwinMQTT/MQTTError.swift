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

    /// Maps a CONNACK return code (MQTT 3.1.1) to an error.
    static func connack(_ rc: Int32, endpoint: String) -> MQTTError {
        let reason = String(cString: mosquitto_connack_string(rc))
        return MQTTError(.refused, "broker \(endpoint) refused the connection: \(reason)")
    }
}
