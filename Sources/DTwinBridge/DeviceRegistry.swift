import DTwinContract
import Synchronization

/// What the bridge has seen of each device: when it last spoke, its last reading, its last
/// status. Answers `STATUS <dev>` by SMS and (later) `GET /api/devices` without a store query.
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

    private let entries = Mutex<[DeviceName: Entry]>([:])

    public init() {}

    /// Called for every device message. The payload is decoded here, outside the lock, so that
    /// a reading is kept even when other messages follow it before anyone asks.
    func noteMessage(_ device: DeviceName, payload: [UInt8], atMillis: Int64) {
        let decoded = DevicePayload.decode(payload)
        let reading =
            decoded.kind == .reading
            ? decoded.value.map {
                Reading(value: $0, unit: decoded.unit, atMillis: decoded.timestampMillis ?? atMillis)
            } : nil
        entries.withLock { entries in
            entries[device, default: Entry(device: device)].lastSeenMillis = atMillis
            if let reading { entries[device]!.lastReading = reading }
        }
    }

    func noteStatus(_ device: DeviceName, _ status: String) {
        entries.withLock { $0[device, default: Entry(device: device)].status = status }
    }

    public func entry(_ device: DeviceName) -> Entry? { entries.withLock { $0[device] } }

    public var devices: [DeviceName] { entries.withLock { $0.keys.sorted() } }

    public var statuses: [DeviceName: String] { entries.withLock { $0.compactMapValues(\.status) } }
}
