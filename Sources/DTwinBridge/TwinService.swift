import CoreMetrics
import DTwinContract
import DTwinSpool
import DTwinStore
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps each device's twin (``TwinDocument``) in the twin store and brings the device to its
/// desired state: a desired change is sent at once to a device that is online, and the pending
/// keys again when it comes back (`online`, or an `awake` message), once each, never a replay of
/// every change made while it was away. What devices say (readings, their LED and period,
/// online/offline) becomes `reported`.
///
/// Reports are gathered in memory and written once per device per turn (at most four turns a
/// second), so a burst of readings costs one twin write per device, not one per message. Each
/// reported value carries its time (the device's `ts`, else when it was received), and a late
/// one never overwrites a newer one: several bridge instances share a device's messages, in no
/// particular order. Writes are conditional on the version read; a conflict is read again and
/// retried, which is also how several instances agree on who sends a command (``TwinDocument/sending(keys:atMillis:unlessSentWithin:)``).
/// Every stored change is published, retained, on `<prefix>/<dev>/state` (through the publish
/// queue, so it survives a broker outage: the newest document of each device, not every one).
public final class TwinService: Service, Sendable {
    /// What a device said, merged per device until the next turn.
    struct Report: Sendable {
        var fields: [String: TwinDocument.Report] = [:]
        /// It came (back) online or booted: its pending commands go out again.
        var cameBack = false

        /// Adds what `other` says: per key the newer report, and a return if either had one.
        mutating func merge(_ other: Report) {
            fields.merge(other.fields) { $0.newer($1) }
            cameBack = cameBack || other.cameBack
        }
    }

    let store: any TwinStore
    let commands: CommandDispatcher
    let schemas: [DeviceName: TwinSchema]
    /// Every stored document, for live views.
    let live: LiveEvents
    let logger: Logger
    private let reports = Mutex<[DeviceName: Report]>([:])
    /// Devices whose reports the store refused at the last turn (kept, and said once).
    private let failing = Mutex<Set<DeviceName>>([])
    /// The earliest deadline (Unix ms) of each device's pending keys, as last written: the
    /// loop wakes then to mark them failed, so the published document says so on time.
    private let deadlines = Mutex<[DeviceName: Int64]>([:])
    private let signal = ChangeSignal()
    /// `dtwin_twin_writes_total`: every stored change of a twin (a device's reports, a desired change).
    private let writes: Counter?

    public init(
        store: any TwinStore, commands: CommandDispatcher, schemas: [DeviceName: TwinSchema] = [:], live: LiveEvents = LiveEvents(),
        metrics: (any MetricsFactory)? = nil, logger: Logger
    ) {
        self.store = store
        self.live = live
        self.commands = commands
        self.schemas = schemas
        self.writes = metrics.map { Counter(label: "dtwin_twin_writes_total", factory: $0) }
        self.logger = logger
    }

    func schema(_ device: DeviceName) -> TwinSchema { schemas[device] ?? .uno }

    // MARK: what devices say (the intake calls these; they never block)

    func noteMessage(_ device: DeviceName, payload: DevicePayload, atMillis: Int64) {
        let at = Self.reportTime(device: payload.timestampMillis, received: atMillis)
        var fields = payload.state
        if payload.kind == .reading, let value = payload.value {
            fields["value"] = .number(value)
            fields["at"] = .string(Timestamp.iso8601(millis: at))
            if let unit = payload.unit { fields["unit"] = .string(unit) }
        }
        // A cellular device has no status: any message says it is awake, and listening for a
        // short while (a Super SIM takes IP commands then), so what waits for it goes now.
        note(device, fields: fields, at: at, cameBack: payload.kind == .awake || commands.isCellular(device))
    }

    func noteStatus(_ device: DeviceName, _ status: String, atMillis: Int64) {
        note(device, fields: ["online": .bool(status == "online")], at: atMillis, cameBack: status == "online")
    }

    /// A device's own time decides the order of its reports, unless its clock is clearly not
    /// set (more than a day from the bridge's): then the time it was received.
    static func reportTime(device: Int64?, received: Int64) -> Int64 {
        guard let device, abs(device - received) <= 86_400_000 else { return received }
        return device
    }

    private func note(_ device: DeviceName, fields: [String: JSONValue], at: Int64, cameBack: Bool) {
        guard !fields.isEmpty || cameBack else { return }
        let report = Report(fields: fields.mapValues { TwinDocument.Report($0, atMillis: at) }, cameBack: cameBack)
        reports.withLock { $0[device, default: Report()].merge(report) }
        signal.changed()
    }

    // MARK: what people and the cloud set

    /// The device's twin (a new, empty one before anything was set), pending keys past their
    /// deadline shown failed.
    public func document(_ device: DeviceName) async throws -> TwinDocument {
        Self.view(of: try await store.twin(device), device: device)
    }

    /// What a stored twin (or none) shows now: pending keys past their deadline marked failed.
    static func view(of stored: TwinDocument?, device: DeviceName) -> TwinDocument {
        (stored ?? TwinDocument(device: device.rawValue)).expiringPending(atMillis: Timestamp.nowMillis())
    }

    /// Applies a desired change; sends the commands of the keys it changed at once if the
    /// device is online (the other pending keys went out already, or go when it is back).
    ///
    /// `waitingForCommands: false` returns once the twin is stored and sends in the background
    /// (the MQTT thread calls it, and must not wait for the broker's acknowledgements it reads).
    /// A crash before they are sent loses nothing: they are pending in the stored twin, and go
    /// out at the device's next return (its retained `online` at the next start, once
    /// ``returnGuardMillis`` has passed).
    public func setDesired(
        _ patch: [String: JSONValue], for device: DeviceName, ifVersion: Int64?, waitingForCommands: Bool = true
    ) async throws -> Result<TwinDocument, TwinRefusal> {
        let now = Timestamp.nowMillis()
        let schema = schema(device)
        var commands: [String] = []
        let result = try await update(device) { document in
            commands = []
            let changed = document.settingDesired(patch, ifVersion: ifVersion, schema: schema, atMillis: now)
            // Online: what this change made pending goes now, and the twin says it went.
            guard case .success(let next) = changed, next.reported["online"] == .bool(true) else { return changed }
            let (sending, due) = next.sending(keys: next.keysPending(since: now), atMillis: now)
            commands = due
            return .success(sending)
        }
        if !commands.isEmpty {
            if waitingForCommands {
                await send(commands, to: device)
            } else {
                Task { await self.send(commands, to: device) }
            }
        }
        return result
    }

    /// A request on `<prefix>/<dev>/state/set`: applied, or refused with the reason on
    /// `<prefix>/<dev>/state/rejected`. An accepted change shows on `<prefix>/<dev>/state`.
    public func applySetRequest(_ payload: [UInt8], for device: DeviceName) async {
        let request: TwinSetRequest
        switch TwinSetRequest.parse(payload, from: .mqtt) {
        case .success(let parsed): request = parsed
        case .failure(let refusal): return await reject(TwinRejection(refusal), device: device)
        }
        do {
            let result = try await setDesired(request.desired, for: device, ifVersion: request.version, waitingForCommands: false)
            switch result {
            case .success(let document):
                logger.info("twin desired state set", metadata: ["device": "\(device)", "version": "\(document.version)", "via": "mqtt"])
            case .failure(let refusal):
                let current = try? await store.twin(device)?.version
                await reject(TwinRejection(refusal, version: current ?? 0, clientToken: request.clientToken), device: device)
            }
        } catch {
            logger.error("the twin cannot be updated", metadata: ["device": "\(device)", "error": "\(error)"])
            let refusal = TwinRejection(
                code: 503, message: "the twin store is unavailable, nothing was changed: \(error)", clientToken: request.clientToken)
            await reject(refusal, device: device)
        }
    }

    func reject(_ rejection: TwinRejection, device: DeviceName) async {
        logger.notice("twin change refused", metadata: ["device": "\(device)", "reason": "\(rejection.message)"])
        await publish(.twinRejection(rejection, device: device, tree: commands.tree), what: "the refusal", device: device)
    }

    /// Queues `message` for the broker (never refused for space: the twin is stored already).
    func publish(_ message: OutboundMessage, what: String, device: DeviceName) async {
        do throws(SpoolError) {
            try await commands.queue.enqueue(message, bounded: false)
        } catch {
            logger.error("\(what) cannot be published", metadata: ["device": "\(device)", "error": "\(error)"])
        }
    }

    // MARK: the loop

    /// At most this often a turn writes the gathered reports: a busy bridge then costs at most
    /// one twin write per device per turn, whatever its message rate.
    static let turn = Duration.milliseconds(250)

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                let wake = min(Timestamp.nowMillis() + 60_000, earliestDeadline() ?? .max)
                // A new, earlier deadline (a key just became pending) wakes it too.
                _ = await signal.wait(
                    until: { self.reports.withLock { !$0.isEmpty } || self.earliestDeadline() ?? .max < wake },
                    deadline: .now + .milliseconds(max(0, wake - Timestamp.nowMillis())))
                let started = ContinuousClock.now
                await applyReports()
                try? await Task.sleep(until: started + Self.turn)
            }
        }
        await applyReports()
    }

    /// Writes every gathered report, one twin write per device, and sends what waits for a
    /// device that came back.
    func applyReports() async {
        let now = Timestamp.nowMillis()
        var batch = reports.withLock { reports in
            defer { reports.removeAll() }
            return reports
        }
        // Devices with a pending key past its deadline are written too: the write marks it failed.
        for device in deadlines.withLock({ $0.filter { $0.value <= now }.keys }) where batch[device] == nil { batch[device] = Report() }
        for (device, report) in batch {
            do {
                let schema = schema(device)
                var due: [String] = []
                _ = try await update(device) { document in
                    let reported = document.settingReported(report.fields, schema: schema, atMillis: now)
                    // Back: everything that waits (not what went out just now, here or from
                    // another instance). Otherwise what this report made pending: the device had
                    // the value and lost it, so it goes at once.
                    let keys = report.cameBack ? nil : reported.keysPending(since: now)
                    let (next, commands) = reported.sending(keys: keys, atMillis: now, unlessSentWithin: Self.returnGuardMillis)
                    due = commands
                    return .success(next)
                }
                if !due.isEmpty { await send(due, to: device, from: .twin) }
                if failing.withLock({ $0.remove(device) != nil }) {
                    logger.notice("the twin is written again", metadata: ["device": "\(device)"])
                }
            } catch {
                // Kept for the next turn, not dropped: a return not written is commands never sent.
                // Said once per outage, not every turn.
                if failing.withLock({ $0.insert(device).inserted }) {
                    logger.error("the twin cannot be updated; trying again every turn", metadata: ["device": "\(device)", "error": "\(error)"])
                }
                reports.withLock { $0[device, default: Report()].merge(report) }
            }
        }
    }

    /// Read, change, write conditionally on the version read; on a conflict, again (a few times).
    /// What waited past its deadline is marked failed on the way (``document(_:)``).
    func update(_ device: DeviceName, _ change: (TwinDocument) -> Result<TwinDocument, TwinRefusal>) async throws
        -> Result<TwinDocument, TwinRefusal>
    {
        for _ in 0..<8 {
            let stored = try await store.twin(device)
            let current = Self.view(of: stored, device: device)
            let result = change(current)
            guard case .success(let next) = result else { return result }
            if next == stored || (stored == nil && next.version == 0) { return result }
            if try await store.putTwin(next, replacing: stored?.version ?? 0) {
                await didStore(next, device: device)
                return result
            }
        }
        throw StoreError("the twin of \(device) keeps changing under this write; try again")
    }

    /// After every stored change: the document goes out, retained, and its next deadline is noted.
    func didStore(_ document: TwinDocument, device: DeviceName) async {
        writes?.increment()
        let deadline = document.pending.values.filter { !$0.failed }.map(\.deadlineMillis).min()
        deadlines.withLock { $0[device] = deadline }
        if deadline != nil { signal.changed() }
        live.note(.twin(document))
        let message = OutboundMessage(
            topic: commands.tree.state(device), payload: document.jsonBytes, createdAtMillis: Timestamp.nowMillis(), retain: true)
        await publish(message, what: "the twin document", device: device)
    }

    /// When (Unix ms) the loop must next wake to mark a pending key failed.
    func earliestDeadline() -> Int64? { deadlines.withLock { $0.values.min() } }

    /// A device says it is back more than once for one return: its `online` status and its
    /// `awake` message, or a retained status the broker delivers live and again when the bridge
    /// subscribes. A command sent to it this recently is not sent again on a return; it stays
    /// pending, and goes at a later return if the device never reports the value.
    /// The twin keeps when each command went (`Pending.sentMillis`), so the guard holds across
    /// restarts and across instances.
    static let returnGuardMillis: Int64 = 10_000

    /// Sends `commands` in order; each is durable in the spool once `send` returns. `origin`
    /// says whether it waits a moment for the broker (a person's change) or not (the loop).
    func send(_ commands: [String], to device: DeviceName, from origin: CommandDispatcher.Origin = .person) async {
        for command in commands {
            do {
                let route = try await self.commands.send(command, to: device, from: origin)
                logger.info("twin command sent", metadata: ["device": "\(device)", "command": "\(command)", "route": "\(route.rawValue)"])
            } catch {
                logger.error("twin command not sent", metadata: ["device": "\(device)", "command": "\(command)", "error": "\(error)"])
            }
        }
    }
}

extension OutboundMessage {
    /// A refused change to a twin, for `<prefix>/<dev>/state/rejected`.
    static func twinRejection(_ rejection: TwinRejection, device: DeviceName, tree: TopicTree) -> OutboundMessage {
        OutboundMessage(topic: tree.stateRejected(device), payload: rejection.jsonBytes, createdAtMillis: Timestamp.nowMillis())
    }
}
