import DTwinContract

/// The twin table (README: "The twin table"): items keyed by `messageid`, queried by device and time.
public protocol TwinStore: Sendable {
    /// Stores an item. Idempotent on `messageId`: returns `false` when it was already stored
    /// (the first copy wins, so a retried delivery cannot change history).
    @discardableResult
    func put(_ item: TwinItem) async throws -> Bool

    /// Items of one device with `since <= ts < until` (Unix ms; `nil` = open), newest first.
    func items(device: DeviceName, since: Int64?, until: Int64?, limit: Int) async throws -> [TwinItem]

    /// Every device with at least one item: its item count and latest item.
    func devices() async throws -> [DeviceSummary]

    /// Throws, saying why, when the table cannot serve requests now (`/readyz`).
    func check() async throws

    /// The device's twin document (``TwinDocument``), or `nil` before anything was set.
    func twin(_ device: DeviceName) async throws -> TwinDocument?

    /// Stores `document` only if the stored twin's version is `replacing` (0: none stored yet);
    /// `false` when another writer got there first. Two writers never lose an update.
    func putTwin(_ document: TwinDocument, replacing version: Int64) async throws -> Bool

    func close() async throws

    /// Returns once everything committed so far survives a power cut (SQLite: its files
    /// fsynced). A store whose writes are durable when they return does nothing.
    func makeDurable() async throws
}

extension TwinStore {
    public func makeDurable() async throws {}
}

public struct DeviceSummary: Sendable, Equatable, Codable {
    public var device: String
    public var count: Int
    public var latest: TwinItem

    public init(device: String, count: Int, latest: TwinItem) {
        self.device = device
        self.count = count
        self.latest = latest
    }
}

/// A store failure, with the cause in words (never a credential).
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What to say when a device's items come back empty, for `dtwin readings` and the API: a
/// mistyped name and a window with nothing in it look alike otherwise.
public enum EmptyReadingsHint {
    /// `latest`: the device's newest item outside the window, if any (one cheap query; never a
    /// count, which would read every item on DynamoDB). `known`: the devices the caller knows
    /// of (the table's, the configured ones, those heard since the bridge started).
    public static func text(device: DeviceName, latest: TwinItem?, known: Set<String>) -> String {
        if let latest {
            return "\(device) has items, the latest at \(latest.ts), but none in this range"
        }
        if known.contains(device.rawValue) {
            return "\(device) is known but has no items in the twin table yet"
        }
        guard !known.isEmpty else { return "no device is known yet: the twin table holds no items and none is configured" }
        let sorted = known.sorted()
        let shown = sorted.prefix(20).joined(separator: ", ") + (sorted.count > 20 ? ", … (\(sorted.count) in all)" : "")
        return "no device \(device.rawValue.debugDescription) is known; the devices are: \(shown)"
    }
}
