import CoreMetrics
import DTwinContract
import Synchronization

/// What the bridge has seen of each device: when it last spoke, its last reading, its last
/// status. Answers `STATUS <dev>` by SMS and `GET /api/devices` without a store query.
///
/// Bounded: anyone who can publish can invent device names, so besides the configured devices
/// (always kept) it keeps at most `capacity` others, forgetting the one least recently heard
/// from when a new one comes (counted in `dtwin_devices_forgotten_total`). A forgotten device's
/// items stay in the twin table; only this in-memory summary goes.
public final class DeviceRegistry: Sendable {
    public struct Entry: Sendable, Equatable {
        public var device: DeviceName
        public var lastSeenMillis: Int64?
        /// The last reading: a later `awake` or raw message does not replace it.
        public var lastReading: Reading?
        public var status: String?
    }

    public struct Reading: Sendable, Equatable {
        public var value: Double
        public var unit: String?
        public var atMillis: Int64
    }

    struct State {
        var entries: [DeviceName: Entry] = [:]
        /// When each unconfigured device was last noted, in notes (not time: a clock step
        /// cannot reorder it).
        var lastNoted: [DeviceName: Int] = [:]
        var notes = 0
    }

    public static let defaultCapacity = 1000

    private let state = Mutex(State())
    let configured: Set<DeviceName>
    let capacity: Int
    let forgotten: Counter?
    private let forgottenCount = Atomic<Int>(0)

    public init(configured: Set<DeviceName> = [], capacity: Int = DeviceRegistry.defaultCapacity, metrics: (any MetricsFactory)? = nil) {
        self.configured = configured
        self.capacity = capacity
        self.forgotten = metrics.map { Counter(label: "dtwin_devices_forgotten_total", factory: $0) }
    }

    /// Unconfigured devices forgotten to make room for newer ones.
    public var forgottenDevices: Int { forgottenCount.load(ordering: .relaxed) }

    /// Runs `change` on the device's entry (made if new), keeping the bound.
    private func update(_ device: DeviceName, _ change: (inout Entry) -> Void) {
        let evicted = state.withLock { state -> Bool in
            change(&state.entries[device, default: Entry(device: device)])
            guard !configured.contains(device) else { return false }
            state.notes += 1
            state.lastNoted[device] = state.notes
            guard state.lastNoted.count > capacity, let oldest = state.lastNoted.min(by: { $0.value < $1.value })?.key else {
                return false
            }
            state.lastNoted[oldest] = nil
            state.entries[oldest] = nil
            return true
        }
        if evicted {
            forgottenCount.add(1, ordering: .relaxed)
            forgotten?.increment()
        }
    }

    /// Called for every device message, with its payload decoded (outside the lock), so that a
    /// reading is kept even when other messages follow it before anyone asks.
    func noteMessage(_ device: DeviceName, decoded: DevicePayload, atMillis: Int64) {
        let reading =
            decoded.kind == .reading
            ? decoded.value.map {
                Reading(value: $0, unit: decoded.unit, atMillis: decoded.timestampMillis ?? atMillis)
            } : nil
        update(device) { entry in
            entry.lastSeenMillis = atMillis
            if let reading { entry.lastReading = reading }
        }
    }

    func noteStatus(_ device: DeviceName, _ status: String) {
        update(device) { $0.status = status }
    }

    public func entry(_ device: DeviceName) -> Entry? { state.withLock { $0.entries[device] } }

    public var devices: [DeviceName] { state.withLock { $0.entries.keys.sorted() } }

    public var statuses: [DeviceName: String] { state.withLock { $0.entries.compactMapValues(\.status) } }
}
