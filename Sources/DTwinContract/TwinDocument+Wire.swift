import Foundation

// What travels: the document as the bridge shows it (the retained `<prefix>/<dev>/state`, and
// `GET /api/devices/<dev>/state`), a request to change it (`state/set`, `PATCH`), and a
// refusal (`state/rejected`). README: "The twin".
extension TwinDocument {
    /// The document with its delta, as published and served. It reads back as a
    /// ``TwinDocument`` (whose delta is computed, not read).
    public struct Published: Encodable, Sendable {
        public let document: TwinDocument

        enum Keys: String, CodingKey { case delta }

        public func encode(to encoder: any Encoder) throws {
            try document.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(document.delta, forKey: .delta)
        }
    }

    public var published: Published { Published(document: self) }

    /// ``published`` as JSON with sorted keys: equal documents are equal bytes.
    public var jsonBytes: [UInt8] { json(withDelta: true) }

    /// Reads a document as ``json(withDelta:)`` wrote it (or `JSONEncoder` before it): from
    /// ``JSONValue/parse(_:)`` when the text is plainly a document, else with `JSONDecoder`,
    /// which reads what the mapping leaves to it or throws saying what is wrong.
    public init(json bytes: [UInt8]) throws {
        if let value = JSONValue.parse(bytes), let document = TwinDocument(value) {
            self = document
        } else {
            self = try JSONDecoder().decode(TwinDocument.self, from: Data(bytes))
        }
    }

    /// The document in `value`, when every member is there with its type (as the decoder
    /// requires); `nil` otherwise, and for whole numbers a `Double` does not hold exactly.
    init?(_ value: JSONValue) {
        guard case .object(let members) = value, case .string(let device)? = members["device"],
            let version = Self.integer(members["version"]), case .object(let desired)? = members["desired"],
            case .object(let reported)? = members["reported"], let desiredAt = Self.integers(members["desiredAt"]),
            let reportedAt = Self.integers(members["reportedAt"]), case .object(let pendingMembers)? = members["pending"]
        else { return nil }
        var pending: [String: Pending] = [:]
        for (key, member) in pendingMembers {
            guard case .object(let fields) = member, let value = fields["value"], case .string(let command)? = fields["command"],
                let since = Self.integer(fields["sinceMillis"]), let deadline = Self.integer(fields["deadlineMillis"]),
                case .bool(let failed)? = fields["failed"]
            else { return nil }
            var sent: Int64?
            switch fields["sentMillis"] {
            case nil, .null?: sent = nil
            case let number?:
                guard let whole = Self.integer(number) else { return nil }
                sent = whole
            }
            pending[key] = Pending(value: value, command: command, sinceMillis: since, deadlineMillis: deadline, failed: failed, sentMillis: sent)
        }
        self.init(device: device)
        self.version = version
        self.desired = desired
        self.reported = reported
        self.desiredAt = desiredAt
        self.reportedAt = reportedAt
        self.pending = pending
    }

    /// A whole number below 2^53, which a `Double` holds exactly.
    private static func integer(_ value: JSONValue?) -> Int64? {
        guard case .number(let number)? = value, number.rounded() == number, abs(number) < 9_007_199_254_740_992 else { return nil }
        return Int64(number)
    }

    private static func integers(_ value: JSONValue?) -> [String: Int64]? {
        guard case .object(let members)? = value else { return nil }
        var integers: [String: Int64] = [:]
        for (key, member) in members {
            guard let integer = integer(member) else { return nil }
            integers[key] = integer
        }
        return integers
    }

    /// The document as JSON with sorted keys (``JSONWriter``), with its delta as published, or
    /// without it as the twin table keeps it; either reads back as the same document
    /// (`JSONDecoder`, which ignores the delta). The same members as its `Encodable` form.
    public func json(withDelta: Bool) -> [UInt8] {
        var json = JSONWriter()
        json.object { json in
            if withDelta {
                json.key("delta")
                json.write(.object(delta))
            }
            json.key("desired")
            json.write(.object(desired))
            json.key("desiredAt")
            json.write(desiredAt) { $0.write($1) }
            json.key("device")
            json.write(device)
            json.key("pending")
            json.write(pending) { json, pending in
                json.object { json in
                    json.key("command")
                    json.write(pending.command)
                    json.key("deadlineMillis")
                    json.write(pending.deadlineMillis)
                    json.key("failed")
                    json.write(pending.failed)
                    if let sent = pending.sentMillis {
                        json.key("sentMillis")
                        json.write(sent)
                    }
                    json.key("sinceMillis")
                    json.write(pending.sinceMillis)
                    json.key("value")
                    json.write(pending.value)
                }
            }
            json.key("reported")
            json.write(.object(reported))
            json.key("reportedAt")
            json.write(reportedAt) { $0.write($1) }
            json.key("version")
            json.write(version)
        }
        return json.bytes
    }
}

/// A request to change a twin's desired state.
public struct TwinSetRequest: Sendable, Equatable {
    public var desired: [String: JSONValue]
    /// Apply only if the twin is still at this version (MQTT `version`, HTTP `If-Match`).
    public var version: Int64?
    /// Given back in a refusal, so a client can tell its own (MQTT only).
    public var clientToken: String?

    public init(desired: [String: JSONValue], version: Int64? = nil, clientToken: String? = nil) {
        self.desired = desired
        self.version = version
        self.clientToken = clientToken
    }

    /// Where a request came from, which decides the fields it may carry.
    public enum Channel: Sendable {
        /// `PATCH /api/devices/<dev>/state`: `{"desired": {...}}`; the version is in `If-Match`.
        case http
        /// `<prefix>/<dev>/state/set`: `{"desired": {...}, "version": N, "clientToken": "..."}`.
        case mqtt
    }

    /// Reads a request within ``TwinLimits`` (size, depth, UTF-8). The keys and values of
    /// `desired` are checked later, against the device's ``TwinSchema``.
    public static func parse(_ bytes: [UInt8], from channel: Channel) -> Result<TwinSetRequest, TwinRefusal> {
        let object: [String: JSONValue]
        switch TwinLimits.parseObject(bytes) {
        case .success(let parsed): object = parsed
        case .failure(let refusal): return .failure(refusal)
        }
        let shape: String
        let allowed: Set<String>
        switch channel {
        case .http:
            shape = #"the body must be {"desired": {...}}, like {"desired": {"led": true}}"#
            allowed = ["desired"]
        case .mqtt:
            shape = #"the message must be {"desired": {...}, "version": N}, like {"desired": {"led": true}} (version and clientToken are optional)"#
            allowed = ["desired", "version", "clientToken"]
        }
        guard case .object(let desired)? = object["desired"], Set(object.keys).isSubset(of: allowed) else {
            let unknown = Set(object.keys).subtracting(allowed).sorted()
            return .failure(
                .invalid(unknown.isEmpty ? shape : "\(shape); \(unknown.map(\.debugDescription).joined(separator: ", ")) is not part of it"))
        }
        var request = TwinSetRequest(desired: desired)
        switch object["version"] {
        case nil: break
        case .number(let number)? where number >= 0 && number.rounded() == number && number < 1e15: request.version = Int64(number)
        default: return .failure(.invalid("version must be the twin's version, a whole number (read it from the state topic)"))
        }
        switch object["clientToken"] {
        case nil: break
        case .string(let token)? where token.utf8.count <= 64: request.clientToken = token
        default: return .failure(.invalid("clientToken must be text of at most 64 bytes"))
        }
        return .success(request)
    }
}

/// What `<prefix>/<dev>/state/rejected` says: the code (409 stale version, 400, 413), the
/// reason, the twin's current version when known, and the request's `clientToken`.
public struct TwinRejection: Codable, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var version: Int64?
    public var clientToken: String?

    public init(_ refusal: TwinRefusal, version: Int64? = nil, clientToken: String? = nil) {
        code = refusal.code
        message = refusal.description
        if case .staleVersion(let current) = refusal { self.version = current } else { self.version = version }
        self.clientToken = clientToken
    }

    public init(code: Int, message: String, clientToken: String? = nil) {
        self.code = code
        self.message = message
        self.clientToken = clientToken
    }

    public var jsonBytes: [UInt8] { Array(TwinWire.encode(self)) }
}

enum TwinWire {
    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every value here encodes (strings, numbers, booleans, nested JSON values).
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }
}
