import Logging
import Synchronization

/// A log that tests read back: `logger` writes every record into it.
public final class RecordedLog: Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public var all: [Entry] { entries.withLock { $0 } }

    public func messages(at level: Logger.Level) -> [String] {
        all.filter { $0.level == level }.map(\.message)
    }

    public func logger(label: String = "test") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }

    struct Handler: LogHandler {
        let log: RecordedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(Entry(level: event.level, message: event.message.description))
        }
    }
}
