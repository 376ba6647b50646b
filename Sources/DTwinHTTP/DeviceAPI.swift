import DTwinBridge
import DTwinContract
import DTwinStore
import DTwinTwilio
import Foundation
import Logging

/// The non-IoT API (README: "The HTTP API"): what the twin knows, and commands and test events for
/// people and scripts. Every route needs the bearer token (``APIAccess``); every answer is
/// JSON, and every mistake of the caller's is a 4xx that says what to change.
public final class DeviceAPI: Sendable {
    /// Readings per request when `limit` is not given, and the most one request may ask for.
    public static let defaultLimit = 100
    public static let maxLimit = 1000
    /// How long a request waits for the twin table before answering 503.
    static let storeDeadline = Duration.seconds(5)

    let access: APIAccess
    let commands: any CommandSending
    let directory: any DeviceDirectory
    let testEvents: any TestEventDelivery
    /// The twin table to read; `nil` when readings live only in the cloud (see ``storeAbsence``).
    let store: (any TwinStore)?
    /// Why there is no store to read, for the answer that says so.
    let storeAbsence: String
    /// Devices named in the configuration: known even before they speak.
    let configured: Set<DeviceName>
    let outbox: SMSOutbox?
    /// The devices' twins; `nil` without a twin table.
    let twins: TwinService?
    let logger: Logger

    public init(
        access: APIAccess, commands: any CommandSending, directory: any DeviceDirectory, testEvents: any TestEventDelivery,
        store: (any TwinStore)?, storeAbsence: String, configured: Set<DeviceName>, outbox: SMSOutbox?, twins: TwinService? = nil,
        logger: Logger
    ) {
        self.twins = twins
        self.access = access
        self.commands = commands
        self.directory = directory
        self.testEvents = testEvents
        self.store = store
        self.storeAbsence = storeAbsence
        self.configured = configured
        self.outbox = outbox
        self.logger = logger
    }

    // MARK: GET /api/devices

    struct DeviceListing: Encodable {
        var devices: [DeviceView]
    }

    struct DeviceView: Encodable {
        struct Reading: Encodable {
            var value: Double
            var unit: String?
            var at: String
        }
        var device: String
        /// `online`/`offline` as the device last announced, if it did.
        var status: String?
        var lastSeen: String?
        var lastReading: Reading?
        /// Items in the twin table (`nil` when this bridge has no table to count in).
        var storedItems: Int?
        var cellular: Bool
    }

    public func devices(_ request: WebhookRequest) async -> WebhookAnswer {
        do throws(Refusal) { _ = try Self.query(request, allowed: []) } catch { return error.answer }
        var summaries: [String: DeviceSummary] = [:]
        if let store {
            do {
                for summary in try await withDeadline(Self.storeDeadline, { try await store.devices() }) {
                    summaries[summary.device] = summary
                }
            } catch {
                return storeUnavailable(error)
            }
        }
        let names = Set(directory.devices).union(configured).union(summaries.keys.compactMap(DeviceName.init))
        let views = names.sorted().map { name -> DeviceView in
            let entry = directory.entry(name)
            let summary = summaries[name.rawValue]
            var reading = entry?.lastReading.map { DeviceView.Reading(value: $0.value, unit: $0.unit, at: Timestamp.iso8601(millis: $0.atMillis)) }
            if reading == nil, let latest = summary?.latest, latest.kind == .reading, let value = latest.value {
                reading = DeviceView.Reading(value: value, unit: nil, at: latest.ts)
            }
            // ISO-8601 in UTC with milliseconds orders like time, so the later of the two is the larger.
            let seen = [entry?.lastSeenMillis.map(Timestamp.iso8601(millis:)), summary?.latest.ts].compactMap { $0 }.max()
            return DeviceView(
                device: name.rawValue, status: entry?.status, lastSeen: seen, lastReading: reading, storedItems: summary?.count,
                cellular: commands.isCellular(name))
        }
        return Self.json(200, DeviceListing(devices: views))
    }

    // MARK: GET /api/devices/<dev>/readings

    struct ReadingsPage: Encodable {
        var device: String
        var count: Int
        /// Oldest first: the newest `limit` items of the range.
        var items: [TwinItem]
        /// With no items: whether the device exists, or which devices do (``EmptyReadingsHint``).
        var hint: String?
    }

    public func readings(_ request: WebhookRequest, device text: String) async -> WebhookAnswer {
        let device: DeviceName
        var range: [String: Int64] = [:]
        var limit = Self.defaultLimit
        do throws(Refusal) {
            device = try Self.device(text)
            let query = try Self.query(request, allowed: ["since", "until", "limit"])
            for name in ["since", "until"] {
                guard let value = query[first: name] else { continue }
                guard let millis = Timestamp.parseMillis(value) else {
                    throw Refusal(400, "\(name)=\(value.debugDescription) is not an ISO-8601 time (2026-11-24T12:00:00Z) or Unix milliseconds")
                }
                range[name] = millis
            }
            if let since = range["since"], let until = range["until"], since >= until {
                throw Refusal(400, "since must be earlier than until")
            }
            if let value = query[first: "limit"] {
                guard let number = Int(value), (1...Self.maxLimit).contains(number) else {
                    throw Refusal(400, "limit=\(value.debugDescription) must be a whole number from 1 to \(Self.maxLimit)")
                }
                limit = number
            }
        } catch {
            return error.answer
        }
        guard let store else { return Self.error(501, storeAbsence) }
        do {
            let (since, until, limit) = (range["since"], range["until"], limit)
            let items = try await withDeadline(Self.storeDeadline) {
                try await store.items(device: device, since: since, until: until, limit: limit)
            }
            var hint: String?
            if items.isEmpty {
                // One more query at most (never a scan of the table): the device's newest item
                // when a range left everything out.
                let latest =
                    since == nil && until == nil
                    ? nil
                    : try await withDeadline(Self.storeDeadline) { try await store.items(device: device, since: nil, until: nil, limit: 1) }.first
                let known = Set(directory.devices.map(\.rawValue)).union(configured.map(\.rawValue))
                hint = EmptyReadingsHint.text(device: device, latest: latest, known: known)
            }
            return Self.json(200, ReadingsPage(device: device.rawValue, count: items.count, items: items.reversed(), hint: hint))
        } catch {
            return storeUnavailable(error)
        }
    }

    // MARK: POST /api/devices/<dev>/commands

    struct CommandReceipt: Encodable {
        var device: String
        var command: String
        /// `mqtt`, `queued`, `ip-command` or `dry-run` (``CommandDispatcher/Route``).
        var route: String
        var topic: String?
        var note: String?
    }

    public func command(_ request: WebhookRequest, device text: String) async -> WebhookAnswer {
        let device: DeviceName
        let command: String
        do throws(Refusal) {
            device = try Self.device(text)
            command = try Self.commandText(request)
        } catch {
            return error.answer
        }
        let route: CommandDispatcher.Route
        do throws(CommandError) {
            route = try await commands.send(command, to: device, from: .person)
        } catch {
            logger.error("API command not sent", metadata: ["device": "\(device)", "error": "\(error.reason)"])
            // Not stored: nothing will be sent, so the caller may simply try again.
            return Self.error(error.isStorageFailure ? 503 : 502, "not sent: \(error.reason)")
        }
        logger.info("API command sent", metadata: ["device": "\(device)", "route": "\(route.rawValue)"])
        let topic = commands.isCellular(device) ? nil : commands.topic(for: device)
        var receipt = CommandReceipt(device: device.rawValue, command: command, route: route.rawValue, topic: topic, note: nil)
        switch route {
        case .queued:
            receipt.note = "stored; the broker has not taken it yet, so it is published as soon as it is back"
            return Self.json(202, receipt)
        case .dryRun:
            receipt.note = "a cellular device and no Twilio credentials: logged, not sent"
        case .mqtt, .ipCommand:
            break
        }
        return Self.json(200, receipt)
    }

    /// The command: the body as text, or `{"command": "..."}` when the body is JSON; checked by
    /// the one rule for commands (``DeviceCommand``).
    static func commandText(_ request: WebhookRequest) throws(Refusal) -> String {
        guard request.body.count <= DeviceCommand.maxBytes * 4 else { throw Refusal(413, "a command is at most \(DeviceCommand.maxBytes) bytes") }
        let text: String
        if request.headers["content-type"]?.lowercased().hasPrefix("application/json") == true {
            guard let json = JSONValue.parse(request.body), let command = json["command"]?.stringValue else {
                throw Refusal(400, #"a JSON body must be an object with a string "command", like {"command": "LIG"}"#)
            }
            text = command
        } else {
            guard let decoded = String(validating: request.body, as: UTF8.self) else { throw Refusal(400, "the command is not UTF-8 text") }
            text = decoded
        }
        do throws(InvalidDeviceCommand) {
            return try DeviceCommand(validating: text).text
        } catch {
            let hint = text.trimmingWhitespace().isEmpty ? ": send it as the body, e.g. curl --data LIG" : ""
            throw Refusal(error.tooLong ? 413 : 400, error.reason + hint)
        }
    }

    // MARK: POST /api/test-event

    struct TestEventResult: Encodable {
        var upstream: String
        var delivered: Bool
        var reply: String?
        var note: String?
        var error: String?
    }

    /// The Lambda console's test event through the configured upstream; the body may replace
    /// the seed's event with another `{"testuser", "testdata", "isIOT"}` object.
    public func testEvent(_ request: WebhookRequest) async -> WebhookAnswer {
        var event = ConsoleTestEvent.seed
        if !request.body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            guard let decoded = try? JSONDecoder().decode(ConsoleTestEvent.self, from: Data(request.body)) else {
                return Self.error(
                    400, #"the body must be empty (the console test event) or {"testuser": "...", "testdata": "...", "isIOT": "False"}"#)
            }
            event = decoded
        }
        let upstream = testEvents.upstreamName
        switch await testEvents.deliverTestEvent(event) {
        case .delivered(let reply, let note, _):
            return Self.json(200, TestEventResult(upstream: upstream, delivered: true, reply: reply, note: note))
        case .retry(let reason), .reject(let reason):
            // The upstream failed, not the caller: a gateway error that names the upstream's answer.
            return Self.json(502, TestEventResult(upstream: upstream, delivered: false, error: reason))
        }
    }

    // MARK: GET /api/outbox

    struct OutboxListing: Encodable {
        var dryRun: Bool
        var entries: [OutboxEntry]
    }

    public func outboxListing(_ request: WebhookRequest) -> WebhookAnswer {
        do throws(Refusal) { _ = try Self.query(request, allowed: []) } catch { return error.answer }
        return Self.json(200, OutboxListing(dryRun: outbox?.isDryRun ?? true, entries: outbox?.entries ?? []))
    }

    // MARK: helpers

    /// The caller's mistake, as the 4xx answer that explains it.
    struct Refusal: Error {
        let answer: WebhookAnswer
        init(_ status: Int, _ message: String) { answer = DeviceAPI.error(status, message) }
    }

    /// A device name from a path segment (percent-decoded), validated like every other name.
    static func device(_ segment: String) throws(Refusal) -> DeviceName {
        guard let text = segment.removingPercentEncoding else {
            throw Refusal(400, "the device name in the path is not valid percent-encoding")
        }
        do {
            return try DeviceName(validating: text)
        } catch {
            throw Refusal(400, "\(error)")
        }
    }

    /// The query's parameters; a 400 for one the route does not take, since a typo
    /// (`limt=5`) should not silently give the default.
    static func query(_ request: WebhookRequest, allowed: Set<String>) throws(Refusal) -> [FormParameter] {
        let parameters = request.query
        if let unknown = parameters.first(where: { !allowed.contains($0.name) }) {
            let accepted = allowed.isEmpty ? "this route takes none" : "this route takes \(allowed.sorted().joined(separator: ", "))"
            throw Refusal(400, "unknown query parameter \(unknown.name.debugDescription): \(accepted)")
        }
        return parameters
    }

    func storeUnavailable(_ error: any Error) -> WebhookAnswer {
        logger.error("twin table not available to the API", metadata: ["error": "\(error)"])
        return Self.error(503, "the twin table is not available: \(error)")
    }

    static func error(_ status: Int, _ message: String) -> WebhookAnswer {
        json(status, ["error": message])
    }

    static func json(_ status: Int, _ value: some Encodable) -> WebhookAnswer {
        let encoder = JSONEncoder()
        // Compact, one line: `| jq` pretty-prints it, and scripts read it as it is.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"error":"the answer could not be encoded"}"#
        return .json(status, body + "\n")
    }
}
