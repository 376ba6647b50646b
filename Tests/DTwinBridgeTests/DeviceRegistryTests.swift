import DTwinContract
import Testing

@testable import DTwinBridge

struct DeviceRegistryTests {
    static let a = DeviceName("a")!

    @Test func aLaterNonReadingDoesNotHideTheLastReading() {
        let registry = DeviceRegistry()
        registry.noteMessage(Self.a, payload: Array("sim-a data 734".utf8), atMillis: 1_000)
        registry.noteMessage(Self.a, payload: Array("a:awake".utf8), atMillis: 2_000)
        registry.noteMessage(Self.a, payload: [0xFF, 0x00], atMillis: 3_000)
        let entry = registry.entry(Self.a)
        #expect(entry?.lastReading == DeviceRegistry.Reading(value: 734, unit: nil, atMillis: 1_000))
        #expect(entry?.lastSeenMillis == 3_000)
    }

    @Test func aJSONReadingKeepsItsUnitAndTheDevicesOwnTime() {
        let registry = DeviceRegistry()
        registry.noteMessage(Self.a, payload: Array(#"{"value": 21.5, "unit": "C", "ts": 1700000000000}"#.utf8), atMillis: 5)
        registry.noteStatus(Self.a, "online")
        let entry = registry.entry(Self.a)
        #expect(entry?.lastReading == DeviceRegistry.Reading(value: 21.5, unit: "C", atMillis: 1_700_000_000_000))
        #expect(entry?.status == "online")
        #expect(registry.entry(DeviceName("b")!) == nil)
    }
}
