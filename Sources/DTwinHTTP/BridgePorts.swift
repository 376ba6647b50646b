import DTwinBridge
import DTwinContract
import DTwinSpool

// What the HTTP layer needs from the rest of the gateway, each a small protocol: the server, the
// webhooks and the API are built from these, never from the bridge class, so they can be tested
// with stand-ins and the bridge can change shape behind them.

/// Sends a command to a device, durably: on its `down` topic, or as a Twilio IP command.
public protocol CommandSending: Sendable {
    func send(_ command: String, to device: DeviceName, from origin: CommandDispatcher.Origin) async throws(CommandError)
        -> CommandDispatcher.Route
    func isCellular(_ device: DeviceName) -> Bool
    /// The topic a device's commands go to.
    func topic(for device: DeviceName) -> String
}

/// What the bridge has seen of each device since it started.
public protocol DeviceDirectory: Sendable {
    var devices: [DeviceName] { get }
    func entry(_ device: DeviceName) -> DeviceRegistry.Entry?
}

/// Takes in a cellular device's message (a Super SIM IP command) as if it had come by MQTT.
public protocol CellularIntake: Sendable {
    func ingestFromIPCommand(_ payload: [UInt8], device: DeviceName) async throws(IntakeRefusal) -> MessageID
}

/// The bridge's own state, for `/readyz` and `/metrics`.
public protocol BridgeHealth: Sendable {
    /// Why the bridge cannot do its job now; empty when it can.
    var unreadiness: [String] { get }
    /// Brings the bridge's gauges up to date before the metrics are read.
    func recordGauges()
    /// Connected, what waits, how much came: for the dashboard.
    var liveHealth: LiveHealth { get }
}

/// The Lambda console's test event, through the configured upstream.
public protocol TestEventDelivery: Sendable {
    var upstreamName: String { get }
    func deliverTestEvent(_ event: ConsoleTestEvent) async -> DeliveryOutcome
}

/// The Twilio SIDs the webhooks acted on, so a retried or replayed webhook acts once.
public protocol WebhookSidLedger: Sendable {
    /// `true` when `sid` is new (and is now recorded), `false` when it was acted on before;
    /// throws when it cannot tell (then nothing is done, and the caller may try again).
    func claim(_ sid: String) async throws -> Bool
    /// Forgets `sid` after its action failed, so Twilio's retry may act.
    func release(_ sid: String) async
}

/// On disk, in the spool's file: a replay after a restart finds its SID.
extension Spool: WebhookSidLedger {
    public func claim(_ sid: String) async throws -> Bool { try await claimSid(sid, atMillis: Timestamp.nowMillis()) }
    public func release(_ sid: String) async { await releaseSid(sid) }
}

extension CommandDispatcher: CommandSending {}
extension DeviceRegistry: DeviceDirectory {}
extension BridgeService: CellularIntake, BridgeHealth, TestEventDelivery {}
