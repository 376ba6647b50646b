/// A command for a device (`LIG`, `LED ON`, `PERIOD 60`) as a person or the cloud gives it: one
/// line of UTF-8 text, trimmed, 1 to ``maxBytes`` bytes, no control characters. The one rule
/// for `dtwin send`, `POST /api/devices/<dev>/commands` and SMS, so what one accepts the others do.
public struct DeviceCommand: Sendable, Equatable, CustomStringConvertible {
    /// Device commands are short words; this is generous and keeps a topic sane.
    public static let maxBytes = 1024

    public let text: String

    public init(validating raw: String) throws(InvalidDeviceCommand) {
        let text = String(raw.trimmingWhitespace())
        guard !text.isEmpty else { throw InvalidDeviceCommand(reason: "the command is empty") }
        guard text.utf8.count <= Self.maxBytes else {
            throw InvalidDeviceCommand(reason: "a command is at most \(Self.maxBytes) bytes", tooLong: true)
        }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw InvalidDeviceCommand(reason: "the command contains control characters (newlines, NUL…): send one line of text")
        }
        self.text = text
    }

    public var description: String { text }
}

public struct InvalidDeviceCommand: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    /// Over ``DeviceCommand/maxBytes`` (the API answers 413 for it, 400 otherwise).
    public let tooLong: Bool

    init(reason: String, tooLong: Bool = false) {
        self.reason = reason
        self.tooLong = tooLong
    }

    public var description: String { reason }
}
