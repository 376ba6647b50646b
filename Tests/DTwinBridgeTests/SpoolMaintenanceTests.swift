import DTwinContract
import DTwinSpool
import Foundation
import Logging
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
