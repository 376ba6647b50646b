import DTwinContract
import DTwinSpool
import DTwinStore
import Foundation
import Logging
import Synchronization
import Testing

@testable import DTwinBridge

/// A twin table that refuses writes for a while: what a device said meanwhile (here, that it is
/// back) is kept and written at a later turn, and the command waiting for it goes out then.
@Suite struct TwinServiceOutageTests {
    /// An SQLite twin table whose twin writes fail while `down` is set.
    final class FlakyStore: TwinStore {
        let store: SQLiteTwinStore
        let down = Atomic<Bool>(false)
        init(path: String) throws { store = try SQLiteTwinStore(path: path) }
        func put(_ item: TwinItem) async throws -> Bool { try await store.put(item) }
        func items(device: DeviceName, since: Int64?, until: Int64?, limit: Int) async throws -> [TwinItem] {
            try await store.items(device: device, since: since, until: until, limit: limit)
        }
        func devices() async throws -> [DeviceSummary] { try await store.devices() }
        func check() async throws { try await store.check() }
        func twin(_ device: DeviceName) async throws -> TwinDocument? { try await store.twin(device) }
        func putTwin(_ document: TwinDocument, replacing version: Int64) async throws -> Bool {
            if down.load(ordering: .relaxed) { throw StoreError("the twin table is down (test)") }
            return try await store.putTwin(document, replacing: version)
        }
        func close() async throws { try await store.close() }
    }

    @Test func aReturnTheStoreRefusedIsWrittenLaterAndItsCommandSent() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-twin-outage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try FlakyStore(path: folder.appendingPathComponent("twin.sqlite").path)
        let queue = PublishQueue(spool: nil, memoryLimit: 1 << 20)
        let logger = Logger(label: "test")
        let dispatcher = CommandDispatcher(queue: queue, tree: try TopicTree(), cellular: [], twilio: nil, logger: logger)
        let twins = TwinService(store: store, commands: dispatcher, logger: logger)
        let device = DeviceName("uno1")!
        func commands() -> [String] {
            ((try? queue.pending(limit: 100)) ?? []).filter { $0.message.topic == "dtwin/uno1/down" }.map {
                String(decoding: $0.message.payload, as: UTF8.self)
            }
        }
        // Wanted while the device is away: pending, nothing sent.
        _ = try await twins.setDesired(["led": .bool(true)], for: device, ifVersion: nil)
        #expect(commands().isEmpty)

        store.down.store(true, ordering: .relaxed)
        twins.noteStatus(device, "online", atMillis: Timestamp.nowMillis())
        await twins.applyReports()
        #expect(commands().isEmpty, "nothing written, nothing sent")
        await twins.applyReports()

        store.down.store(false, ordering: .relaxed)
        await twins.applyReports()
        #expect(commands() == ["LIG"], "the kept return sends what waited")
        #expect(try await store.twin(device)?.reported["online"] == .bool(true))
        await twins.applyReports()
        #expect(commands() == ["LIG"], "once")
    }
}
