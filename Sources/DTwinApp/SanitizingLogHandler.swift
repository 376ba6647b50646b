import Logging

/// Wraps the bridge's log handler so that outside input cannot forge log lines or flood them:
/// in every message and metadata value, control characters (newlines, ESC, NUL, DEL, C1 and the
/// Unicode line separators) are written as `\u{1B}`, and each is cut at `limit` characters.
/// A topic, an SMS body or a device name an attacker chose is then shown, never obeyed by a
/// terminal or a log parser.
public struct SanitizingLogHandler<Wrapped: LogHandler>: LogHandler {
    var wrapped: Wrapped
    let limit: Int

    public init(_ wrapped: Wrapped, limit: Int = 2000) {
        self.wrapped = wrapped
        self.limit = limit
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { wrapped.metadata }
        set { wrapped.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { wrapped[metadataKey: key] }
        set { wrapped[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = Logger.Message(stringLiteral: Self.clean(event.message.description, limit: limit))
        event.metadata = event.metadata?.mapValues { Self.clean($0, limit: limit) }
        wrapped.log(event: event)
    }

    static func clean(_ value: Logger.Metadata.Value, limit: Int) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return .string(clean(text, limit: limit))
        case .stringConvertible(let convertible): return .string(clean(convertible.description, limit: limit))
        case .array(let values): return .array(values.prefix(100).map { clean($0, limit: limit) })
        case .dictionary(let values): return .dictionary(values.mapValues { clean($0, limit: limit) })
        }
    }

    /// `text` with every control character escaped, cut at `limit` characters. Pure.
    public static func clean(_ text: String, limit: Int) -> String {
        let scalars = text.unicodeScalars
        // The common case, a short line of plain text, is returned as it is.
        if scalars.count <= limit, !scalars.contains(where: isControl) { return text }
        var cleaned = String.UnicodeScalarView()
        for (index, scalar) in scalars.enumerated() {
            if index == limit {
                cleaned.append(contentsOf: "… (\(scalars.count - limit) more characters)".unicodeScalars)
                break
            }
            if isControl(scalar) {
                cleaned.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                cleaned.append(scalar)
            }
        }
        return String(cleaned)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
    }
}
