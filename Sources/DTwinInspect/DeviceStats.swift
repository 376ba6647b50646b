import DTwinContract
import Foundation

/// `dtwin inspect --stats`: per device, how many messages, how fast, the last value and when it
/// was last heard from.
public struct DeviceStats: Sendable {
    public struct Row: Sendable, Equatable {
        public var device: String
        public var messages = 0
        public var lastValue: String?
        public var lastSeenMillis: Int64 = 0
        public var status: String?
        /// Arrival times within the rate window, oldest first.
        var recent: [Int64] = []
    }

    /// The rate is messages per second over this window.
    public static let rateWindowMillis: Int64 = 10_000

    public private(set) var rows: [String: Row] = [:]

    public init() {}

    public mutating func add(_ observation: Observation, _ meaning: Meaning) {
        guard let device = meaning.device?.rawValue else { return }
        var row = rows[device] ?? Row(device: device)
        switch meaning {
        case .deviceStatus(_, let status):
            row.status = status
        case .command:
            // A command goes to the device; it says nothing about the device's own traffic.
            rows[device] = row
            return
        default:
            break
        }
        row.messages += 1
        row.lastSeenMillis = max(row.lastSeenMillis, observation.atMillis)
        if case .reading(_, let value, let unit, _, _) = meaning { row.lastValue = value.readingText + (unit.map { " \($0)" } ?? "") }
        row.recent.append(observation.atMillis)
        rows[device] = row
    }

    /// Messages per second of `row` over the window ending at `now`.
    public func rate(_ row: Row, now: Int64) -> Double {
        let count = row.recent.filter { $0 > now - Self.rateWindowMillis }.count
        return Double(count) * 1000 / Double(Self.rateWindowMillis)
    }

    /// Drops arrival times older than the window (call now and then; keeps memory flat).
    public mutating func prune(now: Int64) {
        for key in rows.keys { rows[key]!.recent.removeAll { $0 <= now - Self.rateWindowMillis } }
    }

    /// The table, devices sorted by name.
    public func table(now: Int64) -> String {
        let header = ["DEVICE", "MESSAGES", "RATE/S", "LAST VALUE", "LAST SEEN", "STATUS"]
        let body = rows.values.sorted { $0.device < $1.device }.map { row -> [String] in
            let ago = row.lastSeenMillis == 0 ? "-" : Self.ago(now - row.lastSeenMillis)
            return [
                row.device, String(row.messages), String(format: "%.1f", rate(row, now: now)), row.lastValue ?? "-", ago,
                row.status ?? "-",
            ]
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        return ([header] + body).map { cells in
            cells.enumerated().map { LineFormatter.pad($1, widths[$0]) }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }

    static func ago(_ millis: Int64) -> String {
        let seconds = max(0, millis) / 1000
        if seconds < 60 { return "\(seconds)s ago" }
        if seconds < 3600 { return "\(seconds / 60)m ago" }
        return "\(seconds / 3600)h ago"
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
