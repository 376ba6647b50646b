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

    func close() async throws
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
