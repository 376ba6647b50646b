import Foundation

/// A device's twin: what people and the cloud want (`desired`), what the device last said
/// (`reported`), the difference (`delta`), a `version` raised by one on every change, and when
/// each key was last set. Modelled on AWS IoT's Device Shadow, with two differences that answer
/// its users' commonest complaints: the delta is a function of the document, never a stream of
/// events (a device that slept through ten changes gets the one current delta), and every
/// desired key that waits for the device is listed in `pending`, with a deadline after which it
/// is marked failed instead of being forgotten.
///
/// Pure: every change takes the time and returns the new document or a refusal.
public struct TwinDocument: Sendable, Equatable, Codable {
    /// A desired key the device has not reported yet: sent (or waiting to be sent) as
    /// `command`, failed once `deadlineMillis` passes without the device reporting the value.
    public struct Pending: Sendable, Equatable, Codable {
        public var value: JSONValue
        public var command: String
        public var sinceMillis: Int64
        public var deadlineMillis: Int64
        public var failed: Bool
        /// When its command last went to the device (Unix ms), so that one return (announced
        /// twice, or seen by several bridge instances) sends it once.
        public var sentMillis: Int64?
    }

    /// A value a device reported, and when it was true: the device's `ts`, or when the bridge
    /// received it. Reports are applied in that order, whatever order they arrive in.
    public struct Report: Sendable, Equatable {
        public var value: JSONValue
        public var atMillis: Int64

        public init(_ value: JSONValue, atMillis: Int64) {
            self.value = value
            self.atMillis = atMillis
        }

        /// The later of two reports of one key (the newer one on a tie: it arrived last).
        public func newer(_ other: Report) -> Report { other.atMillis >= atMillis ? other : self }
    }

    public var device: String
    public var version: Int64
    public var desired: [String: JSONValue]
    public var reported: [String: JSONValue]
    /// When each desired and reported key was last set (Unix ms).
    public var desiredAt: [String: Int64]
    public var reportedAt: [String: Int64]
    public var pending: [String: Pending]

    public init(device: String) {
        self.device = device
        version = 0
        desired = [:]
        reported = [:]
        desiredAt = [:]
        reportedAt = [:]
        pending = [:]
    }

    /// The desired keys whose value the device has not reported.
    public var delta: [String: JSONValue] { desired.filter { reported[$0.key] != $0.value } }

    /// Sets desired keys (`null` removes one) if `ifVersion` is the current version (or not
    /// given). Each key is checked against `schema` before anything changes; a key whose new
    /// value differs from what the device reported becomes pending, with its command. Setting
    /// a key to the value it already has changes nothing, unless it had failed: then it is
    /// pending again. The keys made pending now have `sinceMillis == now` (``commandsToSend(since:)``).
    public func settingDesired(
        _ patch: [String: JSONValue], ifVersion: Int64? = nil, schema: TwinSchema, atMillis now: Int64
    ) -> Result<TwinDocument, TwinRefusal> {
        if let ifVersion, ifVersion != version { return .failure(.staleVersion(current: version)) }
        guard !patch.isEmpty else { return .failure(.invalid("desired is empty: name at least one key")) }
        var commands: [String: String] = [:]
        for (key, value) in patch where value != .null {
            switch schema.command(for: key, value: value) {
            case .success(let command): commands[key] = command
            case .failure(let refusal): return .failure(refusal)
            }
        }
        var next = self
        for (key, value) in patch {
            if value == .null {
                guard next.desired.removeValue(forKey: key) != nil else { continue }
                next.desiredAt[key] = nil
                next.pending[key] = nil
                continue
            }
            if next.desired[key] == value {
                // Already wanted: only a key that failed is tried again (someone insists).
                if let entry = next.pending[key], entry.failed, let command = commands[key] {
                    next.pending[key] = Pending(
                        value: value, command: command, sinceMillis: now, deadlineMillis: now + schema.pendingTimeoutMillis, failed: false)
                }
                continue
            }
            next.desired[key] = value
            next.desiredAt[key] = now
            if next.reported[key] == value {
                next.pending[key] = nil
            } else if let command = commands[key] {
                next.pending[key] = Pending(
                    value: value, command: command, sinceMillis: now, deadlineMillis: now + schema.pendingTimeoutMillis, failed: false)
            }
        }
        return .success(next.raisingVersion(from: self))
    }

    /// Merges what the device reported; a pending key whose value it now reports is done.
    ///
    /// With `schema`, a device that reports a value other than the desired one for a key that
    /// nothing waits for (it restarted and lost its state, or someone pressed its button) has
    /// drifted: the key is pending again, with its command (`sinceMillis == now`), so the twin
    /// brings it back instead of showing a delta forever. A key that failed stays failed: only
    /// a person sets it going again.
    public func settingReported(_ patch: [String: JSONValue], schema: TwinSchema? = nil, atMillis now: Int64) -> TwinDocument {
        settingReported(patch.mapValues { Report($0, atMillis: now) }, schema: schema, atMillis: now)
    }

    /// ``settingReported(_:schema:atMillis:)`` for reports that carry their own time: a report
    /// older than what the twin holds for its key (`reportedAt`) is late, and changes nothing;
    /// `reportedAt` becomes the report's time.
    public func settingReported(_ patch: [String: Report], schema: TwinSchema? = nil, atMillis now: Int64) -> TwinDocument {
        var next = self
        for (key, report) in patch {
            if let known = next.reportedAt[key], report.atMillis < known { continue }
            let value = report.value
            if value == .null {
                next.reported[key] = nil
                next.reportedAt[key] = nil
                continue
            }
            if next.reported[key] != value { next.reported[key] = value }
            next.reportedAt[key] = report.atMillis
            if next.pending[key]?.value == value { next.pending[key] = nil }
            if let schema, let wanted = next.desired[key], wanted != value, next.pending[key] == nil,
                case .success(let command) = schema.command(for: key, value: wanted)
            {
                next.pending[key] = Pending(
                    value: wanted, command: command, sinceMillis: now, deadlineMillis: now + schema.pendingTimeoutMillis, failed: false)
            }
        }
        return next.raisingVersion(from: self)
    }

    /// Marks failed the pending keys whose deadline has passed; they stay listed (and desired)
    /// until someone sets them again or the device reports them.
    public func expiringPending(atMillis now: Int64) -> TwinDocument {
        var next = self
        for (key, entry) in pending where !entry.failed && now >= entry.deadlineMillis { next.pending[key]?.failed = true }
        return next.raisingVersion(from: self)
    }

    /// The commands the device should get now: one per pending key not yet failed, in key
    /// order. Sent when the device is (or comes back) online: the current delta once, never
    /// every change made while it was away.
    public var commandsToSend: [String] { commandsToSend(keys: nil) }

    /// ``commandsToSend`` for `keys` only (all pending keys with `nil`).
    public func commandsToSend(keys: Set<String>?) -> [String] {
        pending.filter { !$0.value.failed && keys?.contains($0.key) != false }.sorted { $0.key < $1.key }.map(\.value.command)
    }

    /// The commands of the keys made pending at `millis` (by one ``settingDesired``): what a
    /// change sends to a device that is online. A key set again to the value it already waits
    /// for sends nothing again.
    public func commandsToSend(since millis: Int64) -> [String] { commandsToSend(keys: keysPending(since: millis)) }

    /// The keys made pending at `millis`: by one change, or by one report that drifted.
    public func keysPending(since millis: Int64) -> Set<String> { Set(pending.filter { $0.value.sinceMillis == millis }.keys) }

    /// Notes that the commands of `keys` (every pending key with `nil`) go to the device at
    /// `now`, and returns them with the document that says so; a key whose command went less than
    /// `guardMillis` ago is left out. Written conditionally like any change, this lets exactly
    /// one writer send what one return of the device calls for, however many saw the return.
    public func sending(keys: Set<String>?, atMillis now: Int64, unlessSentWithin guardMillis: Int64 = 0) -> (TwinDocument, [String]) {
        var next = self
        var due: Set<String> = []
        for (key, entry) in pending where !entry.failed && keys?.contains(key) != false {
            if let sent = entry.sentMillis, now - sent < guardMillis { continue }
            next.pending[key]?.sentMillis = now
            due.insert(key)
        }
        return (next.raisingVersion(from: self), next.commandsToSend(keys: due))
    }

    /// A value as people type it (an SMS, `dtwin state --set`): `on`/`off` and `true`/`false`
    /// are booleans, a whole number is a number, anything else is text (the device's
    /// ``TwinSchema`` says what fits).
    public static func typed(_ text: String) -> JSONValue {
        switch text.lowercased() {
        case "on", "true": .bool(true)
        case "off", "false": .bool(false)
        default: Int(text).map { .number(Double($0)) } ?? .string(text)
        }
    }

    /// A value as people read and write it: `on`/`off` for booleans, numbers without a needless
    /// `.0`, text as it is.
    public static func shown(_ value: JSONValue) -> String {
        switch value {
        case .bool(let on): on ? "on" : "off"
        case .number(let number): number.readingText
        case .string(let text): text
        case .null: "null"
        case .array, .object: String(decoding: (try? JSONEncoder().encode(value)) ?? Data(), as: UTF8.self)
        }
    }

    /// Raises the version by one when anything but the version changed since `previous`.
    private func raisingVersion(from previous: TwinDocument) -> TwinDocument {
        var next = self
        next.version = previous.version
        guard next != previous else { return previous }
        next.version = previous.version + 1
        return next
    }
}

/// Why a change to a twin was refused; nothing was stored or sent.
public enum TwinRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// `ifVersion` was not the document's version: read it again and retry.
    case staleVersion(current: Int64)
    /// The request is over ``TwinLimits/maxBytes``.
    case tooLarge(bytes: Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .staleVersion(let current): "the twin has changed: its version is now \(current)"
        case .tooLarge(let bytes): "the document is \(bytes) bytes; at most \(TwinLimits.maxBytes) are allowed"
        case .invalid(let reason): reason
        }
    }

    /// The HTTP status that says it (on MQTT too, in `state/rejected`): 409 for a stale
    /// version, as AWS IoT's shadow answers; 413, 400.
    public var code: Int {
        switch self {
        case .staleVersion: 409
        case .tooLarge: 413
        case .invalid: 400
        }
    }
}

/// The desired keys a device understands and the command each becomes. The default fits the
/// UNO sketch: `led: true|false` → `LIG` / `ACK`, `period: N` (seconds) → `PERIOD N`.
public struct TwinSchema: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case bool, integer, text
    }

    public struct Key: Sendable, Equatable {
        public var kind: Kind
        /// For `bool`: the commands for true and false. For `integer` and `text`: a template in
        /// which `{value}` is replaced.
        public var whenTrue: String
        public var whenFalse: String
        public var template: String
        public var range: ClosedRange<Int>?

        public static func bool(on: String, off: String) -> Key {
            Key(kind: .bool, whenTrue: on, whenFalse: off, template: "", range: nil)
        }

        public static func integer(_ template: String, range: ClosedRange<Int>) -> Key {
            Key(kind: .integer, whenTrue: "", whenFalse: "", template: template, range: range)
        }

        public static func text(_ template: String) -> Key {
            Key(kind: .text, whenTrue: "", whenFalse: "", template: template, range: nil)
        }
    }

    public var keys: [String: Key]
    /// How long a desired key may wait for the device before it is marked failed
    /// (`devices.<dev>.twinTimeout`).
    public var pendingTimeoutMillis: Int64

    public init(keys: [String: Key], pendingTimeoutMillis: Int64 = 24 * 3600 * 1000) {
        self.keys = keys
        self.pendingTimeoutMillis = pendingTimeoutMillis
    }

    public static let uno = TwinSchema(keys: [
        "led": .bool(on: "LIG", off: "ACK"), "period": .integer("PERIOD {value}", range: 1...86_400),
    ])

    /// The command that sets `key` to `value` on the device, or why the pair is refused.
    public func command(for key: String, value: JSONValue) -> Result<String, TwinRefusal> {
        guard let spec = keys[key] else {
            return .failure(.invalid("unknown desired key \(key.debugDescription); this device takes \(keys.keys.sorted().joined(separator: ", "))"))
        }
        let command: String
        switch (spec.kind, value) {
        case (.bool, .bool(let on)):
            command = on ? spec.whenTrue : spec.whenFalse
        case (.integer, .number(let number)):
            guard number.rounded() == number, let whole = Int(exactly: number), spec.range?.contains(whole) ?? true else {
                let range = spec.range.map { " from \($0.lowerBound) to \($0.upperBound)" } ?? ""
                return .failure(.invalid("\(key) must be a whole number\(range), not \(number.readingText)"))
            }
            command = spec.template.replacingOccurrences(of: "{value}", with: String(whole))
        case (.text, .string(let text)):
            command = spec.template.replacingOccurrences(of: "{value}", with: text)
        default:
            return .failure(.invalid("\(key) must be \(spec.kind == .bool ? "true or false" : spec.kind == .integer ? "a number" : "text")"))
        }
        // The command goes out under the one rule for device commands.
        do { return .success(try DeviceCommand(validating: command).text) } catch { return .failure(.invalid("\(key): \(error)")) }
    }
}

/// The limits a twin document obeys, as AWS IoT's shadow does: 8 KB of JSON at most, nesting
/// at most 6 deep, UTF-8 only.
public enum TwinLimits {
    public static let maxBytes = 8 * 1024
    public static let maxDepth = 6

    /// The JSON object in `bytes`, or why it is refused.
    public static func parseObject(_ bytes: [UInt8]) -> Result<[String: JSONValue], TwinRefusal> {
        guard bytes.count <= maxBytes else { return .failure(.tooLarge(bytes: bytes.count)) }
        guard String(validating: bytes, as: UTF8.self) != nil else { return .failure(.invalid("the document is not UTF-8")) }
        guard let value = JSONValue.parse(bytes), case .object(let object) = value else {
            return .failure(.invalid("the document is not a JSON object"))
        }
        let depth = Self.depth(of: value)
        guard depth <= maxDepth else { return .failure(.invalid("the document nests \(depth) deep; at most \(maxDepth) levels are allowed")) }
        return .success(object)
    }

    static func depth(of value: JSONValue) -> Int {
        switch value {
        case .object(let object): 1 + (object.values.map(depth).max() ?? 0)
        case .array(let array): 1 + (array.map(depth).max() ?? 0)
        default: 0
        }
    }
}
