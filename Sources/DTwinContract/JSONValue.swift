import Foundation

/// A parsed JSON document that keeps booleans and numbers apart (Foundation's
/// `JSONSerialization` hands both out as `NSNumber`).
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let bool): try container.encode(bool)
        case .number(let number): try container.encode(number)
        case .string(let string): try container.encode(string)
        case .array(let array): try container.encode(array)
        case .object(let object): try container.encode(object)
        }
    }

    /// Parses `bytes` as JSON; `nil` when they are not JSON. ``JSONReader`` reads plain JSON;
    /// what it leaves (trailing commas, a byte-order mark, numbers a `Double` cannot hold, …)
    /// goes to `JSONDecoder`, which reads it as before or refuses it.
    public static func parse(_ bytes: some Collection<UInt8>) -> JSONValue? {
        let bytes = Array(bytes)
        return JSONReader.parse(bytes) ?? (try? JSONDecoder().decode(JSONValue.self, from: Data(bytes)))
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let number) = self { return number }
        return nil
    }

    public var isNull: Bool { self == .null }
}
