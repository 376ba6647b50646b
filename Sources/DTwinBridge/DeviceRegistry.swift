import DTwinContract
import Synchronization

/// What the bridge has seen of each device: last message, last status. Answers `STATUS <dev>`
/// by SMS and (later) `GET /api/devices` without a store query.
///
/// The hot path only stores bytes and a time; payloads are decoded when someone asks.
public final class DeviceRegistry: Sendable {
    public struct Entry: Sendable, Equatable {
        public var device: DeviceName
        public var lastSeenMillis: Int64?
        public var lastPayload: [UInt8]?
        /// The last reading, decoded: kept apart because a later `awake` must not hide it.
        public var lastReading: Reading?
        public var status: String?
    }

    public struct Reading: Sendable, Equatable {
        public var value: Double
        public var unit: String?
        public var atMillis: Int64
    }

    private let entries = Mutex<[DeviceName: Entry]>([:])

    public init() {}

    func noteMessage(_ device: DeviceName, payload: [UInt8], atMillis: Int64) {
        entries.withLock { entries in
            entries[device, default: Entry(device: device)].lastSeenMillis = atMillis
            entries[device]!.lastPayload = payload
        }
    }

    func noteStatus(_ device: DeviceName, _ status: String) {
        entries.withLock { $0[device, default: Entry(device: device)].status = status }
    }

    /// The device's entry, with its last payload decoded into ``Entry/lastReading`` when it was a reading.
    public func entry(_ device: DeviceName) -> Entry? {
        entries.withLock { entries in
            guard var entry = entries[device] else { return nil }
            if let payload = entry.lastPayload, let seen = entry.lastSeenMillis {
                let decoded = DevicePayload.decode(payload)
                if decoded.kind == .reading, let value = decoded.value {
                    entry.lastReading = Reading(value: value, unit: decoded.unit, atMillis: decoded.timestampMillis ?? seen)
                }
                entry.lastPayload = nil
                entries[device] = entry
            }
            return entry
        }
    }

    public var devices: [DeviceName] { entries.withLock { $0.keys.sorted() } }

    public var statuses: [DeviceName: String] { entries.withLock { $0.compactMapValues(\.status) } }
}
