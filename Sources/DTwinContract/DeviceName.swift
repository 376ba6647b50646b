/// A device's name as it appears in topics, SMS and the API: `[A-Za-z0-9_-]{1,64}`, except the
/// reserved name `bridge`.
///
/// Every device name that enters the system goes through ``DeviceName/init(validating:)``,
/// so a name can never smuggle MQTT wildcards (`+`, `#`) or extra topic levels (`/`).
public struct DeviceName: Hashable, Sendable, CustomStringConvertible, Comparable {
    public static let maxLength = 64

    public let rawValue: String

    /// Validates `text` as a device name; the error says what is wrong with it.
    public init(validating text: String) throws(InvalidDeviceName) {
        guard !text.isEmpty else { throw InvalidDeviceName(name: text, reason: "is empty") }
        guard text.utf8.count <= Self.maxLength else {
            throw InvalidDeviceName(name: text, reason: "is longer than \(Self.maxLength) characters")
        }
        for byte in text.utf8 where !Self.isAllowed(byte) {
            let shown = byte < 0x80 ? "'\(Character(Unicode.Scalar(byte)))'" : "a non-ASCII character"
            throw InvalidDeviceName(name: text, reason: "contains \(shown); allowed are A-Z a-z 0-9 _ -")
        }
        if text == Self.reserved {
            throw InvalidDeviceName(name: text, reason: "is reserved for the bridge's own topics (\(text)/status, \(text)/deadletter)")
        }
        self.rawValue = text
    }

    /// `<prefix>/bridge/...` is the bridge's own part of the tree, so no device may be called that.
    public static let reserved = "bridge"

    /// `nil` when `text` is not a valid device name.
    public init?(_ text: String) {
        guard let name = try? DeviceName(validating: text) else { return nil }
        self = name
    }

    public var description: String { rawValue }

    public static func < (lhs: DeviceName, rhs: DeviceName) -> Bool { lhs.rawValue < rhs.rawValue }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// Why a string is not a ``DeviceName``.
public struct InvalidDeviceName: Error, Equatable, CustomStringConvertible {
    public let name: String
    public let reason: String

    public var description: String {
        // The name is shown escaped and cut short: it may be hostile or huge.
        let shown = name.count > 80 ? String(name.prefix(80)) + "…" : name
        return "invalid device name \(shown.debugDescription): \(reason)"
    }
}
