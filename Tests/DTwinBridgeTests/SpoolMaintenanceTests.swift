import DTwinContract
import DTwinSpool
import Foundation
import Logging
import Synchronization
import Testing

@testable import DTwinBridge

/// The spool's maintenance, turn by turn, on a real SQLite file: what it checkpoints reaches the
/// database file itself, which SQLite alone would not do for a few messages (its own checkpoint
/// waits for 1,000 pages of WAL).
@Suite struct SpoolMaintenanceTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-maintenance-\(UUID().uuidString)")
    var path: String { folder.appendingPathComponent("spool.sqlite").path }

    func messages(_ count: Int) -> [DeviceMessage] {
        (0..<count).map { n in
            DeviceMessage(
                id: MessageID(rawValue: "id-\(n)"), device: DeviceName("uno1")!, topic: "dtwin/uno1/up",
                payload: Array("sim-uno1 data \(n)".utf8), receivedAtMillis: 1_700_000_000_000 + Int64(n), source: .mqtt)
        }
    }

    /// The database file alone, as a power cut would leave it with `spool.sync: normal` (the
    /// WAL's commits are synced only at checkpoints): the messages in a copy without its WAL.
    func messagesInTheFileAlone() throws -> Int {
        let copy = folder.appendingPathComponent("copy-\(UUID().uuidString).sqlite")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(atPath: path, toPath: copy.path)
        return try Spool(path: copy.path, maxBytes: 100_000_000).entries().count
    }

    /// A trickle written after one checkpoint reaches the file at the next, 50 turns (a second)
    /// later, and not before.
    @Test func aFewMessagesReachTheDatabaseFileAfterFiftyTurns() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 100_000_000)
        let maintenance = SpoolMaintenance(spool: spool, logger: Logger(label: "test"))
        var turns = SpoolMaintenance.Turns()
        await maintenance.turn(&turns)
        _ = try messages(3).map { try spool.append($0) }
        for _ in 1..<SpoolMaintenance.turnsPerCheckpoint { await maintenance.turn(&turns) }
        #expect(try messagesInTheFileAlone() == 0)
        await maintenance.turn(&turns)
        #expect(try messagesInTheFileAlone() == 3)
    }

    /// Removals behind a gate (the local twin table synced first) are committed once a second,
    /// at the checkpoint's turn, after the gate; ungated ones at every turn.
    @Test func gatedRemovalsAreCommittedOnceASecondAfterTheGate() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 100_000_000)
        let maintenance = SpoolMaintenance(spool: spool, logger: Logger(label: "test"))
        var turns = SpoolMaintenance.Turns()
        let sent = messages(4)
        let seqs = try sent.map { try spool.append($0) }
        spool.remove(seqs[0], message: sent[0])
        await maintenance.turn(&turns)
        #expect(spool.count == 3, "ungated: removed at the first turn")

        let gatePassed = Atomic<Int>(0)
        spool.removalsWait(for: { gatePassed.add(1, ordering: .relaxed) })
        spool.remove(seqs[1], message: sent[1])
        for _ in 1..<SpoolMaintenance.turnsPerCheckpoint { await maintenance.turn(&turns) }
        #expect(spool.count == 3 && gatePassed.load(ordering: .relaxed) == 0, "gated: not before the checkpoint's turn")
        await maintenance.turn(&turns)
        #expect(spool.count == 2 && gatePassed.load(ordering: .relaxed) == 1)
    }

    /// A turn that finds the WAL at `Spool.walRestartFrames` starts it over, whatever the turn's
    /// number: everything is in the database file, and the next commit writes at the WAL's start.
    @Test func aLongWALIsStartedOverAtTheNextTurn() async throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 100_000_000)
        let maintenance = SpoolMaintenance(spool: spool, logger: Logger(label: "test"))
        var turns = SpoolMaintenance.Turns()
        await maintenance.turn(&turns)
        let all = messages(Spool.walRestartFrames + 20)
        _ = try all.dropLast().map { try spool.append($0) }
        #expect(spool.walFrames >= Spool.walRestartFrames)
        await maintenance.turn(&turns)
        #expect(turns.number % SpoolMaintenance.turnsPerCheckpoint != 0)
        #expect(try messagesInTheFileAlone() == all.count - 1)
        _ = try all.suffix(1).map { try spool.append($0) }
        #expect((1...2).contains(spool.walFrames))
    }
}
