/// A configuration problem, naming the key and where its value came from.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The key's dotted path (`upstream.mode`), or the environment variable's name.
    public let key: String
    public let message: String
    /// `dtwin.yaml line 4`, `environment variable DTWIN_UPSTREAM_MODE`, …
    public let source: String?

    public init(key: String, message: String, source: String? = nil) {
        self.key = key
        self.message = message
        self.source = source
    }

    public var description: String {
        "configuration error: \(key): \(message)" + (source.map { " (\($0))" } ?? "")
    }
}
