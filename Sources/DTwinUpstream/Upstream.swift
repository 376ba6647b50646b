import DTwinContract
import Logging

/// Where IoT events go (README: "The IoT event", `upstream.mode`).
///
/// An upstream never throws: every failure is classified into a ``DeliveryOutcome`` so the
/// bridge can decide between retrying and dead-lettering.
public protocol Upstream: Sendable {
    /// `apigw`, `lambda` or `local`, for logs.
    var name: String { get }

    /// Delivers one device message's event.
    func deliver(_ event: IoTEvent, logger: Logger) async -> DeliveryOutcome

    /// Delivers one device message: its event (``IoTEvent/init(message:)``) unless the upstream
    /// has a shorter way to the same outcome (`local` stores the message's item directly).
    func deliver(message: DeviceMessage, logger: Logger) async -> DeliveryOutcome

    /// Delivers the Lambda console's test event (`POST /api/test-event`, `dtwin event --test`).
    func deliverTestEvent(_ event: ConsoleTestEvent, logger: Logger) async -> DeliveryOutcome

    /// Where the bridge's delivery workers should run: the upstream's own I/O threads, so a
    /// delivery does not hop between threads (see ``EventLoopTaskExecutor``). Empty: anywhere.
    var workerExecutors: [any TaskExecutor] { get }
}

extension Upstream {
    public var workerExecutors: [any TaskExecutor] { [] }

    public func deliver(message: DeviceMessage, logger: Logger) async -> DeliveryOutcome {
        await deliver(IoTEvent(message: message), logger: logger)
    }
}
