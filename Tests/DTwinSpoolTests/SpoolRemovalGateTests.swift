import DTwinContract
import DTwinSpool
import Foundation
import GRDB
import Synchronization
import Testing

/// Delivered messages leave the spool's file only after the gate (``Spool/removalsWait(for:)``):
/// where they went must hold them across a power cut first.
@Suite struct SpoolRemovalGateTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-spool-gate-\(UUID().uuidString)")
    var path: String { folder.appendingPathComponent("spool.sqlite").path }

    struct GateFailure: Error {}

    func message(_ n: Int) -> DeviceMessage {
        DeviceMessage(
            id: MessageID(rawValue: "id-\(n)"), device: DeviceName("uno1")!, topic: "dtwin/uno1/up",
            payload: Array("sim-uno1 data \(n)".utf8), receivedAtMillis: 1_700_000_000_000 + Int64(n))
    }

    /// Rows of the inbound table, read from the file by a connection of its own.
    func rowsInFile() throws -> Int {
        try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbound") ?? -1 }
    }

    @Test func removalsLeaveTheFileOnlyAfterTheGatePasses() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000)
        let sent = (1...3).map(message)
        let seqs = try sent.map { try spool.append($0) }
        let seenByGate = Mutex<[Int]>([])
        let failing = Atomic<Bool>(false)
        let path = self.path
        spool.removalsWait(for: {
            // What the file holds while the gate runs: the delivered rows are still there.
            let rows = try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM inbound") ?? -1 }
            seenByGate.withLock { $0.append(rows) }
            if failing.load(ordering: .relaxed) { throw GateFailure() }
        })
        spool.remove(seqs[0], message: sent[0])
        spool.remove(seqs[1], message: sent[1])
        #expect(try await spool.commitRemovals() == 2)
        #expect(seenByGate.withLock { $0 } == [3])
        #expect(try rowsInFile() == 1)

        // A gate that fails keeps the removal back (retried at the next commit), loudly.
        failing.store(true, ordering: .relaxed)
        spool.remove(seqs[2], message: sent[2])
        await #expect(throws: SpoolError.self) { try await spool.commitRemovals() }
        #expect(try rowsInFile() == 1)
        failing.store(false, ordering: .relaxed)
        #expect(try await spool.commitRemovals() == 1)
        #expect(try rowsInFile() == 0)
        #expect(seenByGate.withLock { $0 } == [3, 1, 1])
        // Nothing to remove: the gate is not asked.
        #expect(try await spool.commitRemovals() == 0)
        #expect(seenByGate.withLock { $0 }.count == 3)
    }
}
