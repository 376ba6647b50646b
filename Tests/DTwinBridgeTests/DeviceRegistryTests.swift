import DTwinContract
import Testing

@testable import DTwinBridge

struct DeviceRegistryTests {
    static let a = DeviceName("a")!

    @Test func aLaterNonReadingDoesNotHideTheLastReading() {
        let registry = DeviceRegistry()
        registry.noteMessage(Self.a, decoded: DevicePayload.decode(Array("sim-a data 734".utf8)), atMillis: 1_000)
        registry.noteMessage(Self.a, decoded: DevicePayload.decode(Array("a:awake".utf8)), atMillis: 2_000)
        registry.noteMessage(Self.a, decoded: DevicePayload.decode([0xFF, 0x00]), atMillis: 3_000)
        let entry = registry.entry(Self.a)
        #expect(entry?.lastReading == DeviceRegistry.Reading(value: 734, unit: nil, atMillis: 1_000))
        #expect(entry?.lastSeenMillis == 3_000)
    }

    @Test func aJSONReadingKeepsItsUnitAndTheDevicesOwnTime() {
        let registry = DeviceRegistry()
        registry.noteMessage(Self.a, decoded: DevicePayload.decode(Array(#"{"value": 21.5, "unit": "C", "ts": 1700000000000}"#.utf8)), atMillis: 5)
        registry.noteStatus(Self.a, "online")
        let entry = registry.entry(Self.a)
        #expect(entry?.lastReading == DeviceRegistry.Reading(value: 21.5, unit: "C", atMillis: 1_700_000_000_000))
        #expect(entry?.status == "online")
        #expect(registry.entry(DeviceName("b")!) == nil)
    }

    /// Invented names cannot grow it: configured devices stay, the others are capped, the least
    /// recently heard from going first, and each one forgotten is counted.
    @Test func strangersAreCappedAndTheConfiguredStay() {
        let configured = DeviceName("uno1")!
        let registry = DeviceRegistry(configured: [configured], capacity: 3)
        registry.noteStatus(configured, "online")
        for n in 0..<3 { registry.noteMessage(DeviceName("x\(n)")!, decoded: DevicePayload.decode(Array("1".utf8)), atMillis: Int64(n)) }
        registry.noteMessage(DeviceName("x0")!, decoded: DevicePayload.decode(Array("2".utf8)), atMillis: 10)  // x0 heard again: x1 is now the oldest
        for n in 3..<100 { registry.noteMessage(DeviceName("x\(n)")!, decoded: DevicePayload.decode(Array("1".utf8)), atMillis: Int64(n)) }
        #expect(registry.devices.map(\.rawValue) == ["uno1", "x97", "x98", "x99"])
        #expect(registry.forgottenDevices == 97)
        registry.noteMessage(DeviceName("x98")!, decoded: DevicePayload.decode(Array("5".utf8)), atMillis: 200)
        registry.noteMessage(DeviceName("y")!, decoded: DevicePayload.decode(Array("5".utf8)), atMillis: 201)
        #expect(registry.devices.map(\.rawValue) == ["uno1", "x98", "x99", "y"], "x97 was the least recently heard from")
        #expect(registry.entry(configured)?.status == "online")
    }
}
