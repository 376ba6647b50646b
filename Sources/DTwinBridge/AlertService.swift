import DTwinConfig
import DTwinContract
import DTwinTwilio
import Foundation
import Logging
import Synchronization

/// Runs the `alerts:` rules on every newly stored reading (`local` mode) and texts the
/// device's phones through the ``SMSRelay``.
public final class AlertService: Sendable {
    let state: Mutex<AlertState>
    let relay: SMSRelay
    let logger: Logger

    public init(rules: [DTwinConfiguration.AlertRule], relay: SMSRelay, logger: Logger) {
        state = Mutex(AlertState(rules: rules))
        self.relay = relay
        self.logger = logger
    }

    public func stored(_ item: TwinItem) {
        guard item.kind == .reading, let value = item.value, let device = DeviceName(item.device) else { return }
        let now = Timestamp.nowMillis()
        let texts = state.withLock { $0.evaluate(device: device, value: value, now: now) }
        for text in texts {
            logger.info("alert", metadata: ["device": "\(device)", "value": "\(value)"])
            relay.relay(text, about: device, origin: .alert, logger: logger)
        }
    }
}
