/// Why the bridge did not take in a message handed to it directly (a Super SIM IP command):
/// the caller answers with it instead of acknowledging.
public struct IntakeRefusal: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable {
        /// The payload is over `maxPayload`: it will never be taken.
        case tooLarge
        /// The spool refuses it or the bridge is stopping: try again later.
        case unavailable
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}
