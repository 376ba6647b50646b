import DTwinContract
import Foundation
import GRDB
import Testing

@testable import DTwinSpool

/// What the spool asks of SQLite, read back from the connections it commits with.
@Suite struct SpoolFileSettingsTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-spool-settings-\(UUID().uuidString)")
    var path: String { folder.appendingPathComponent("spool.sqlite").path }

    func synchronous(of spool: Spool) throws -> Int? {
        try spool.pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
    }

    /// `spool.sync: full` is SQLite's FULL (2) on the writer, the connection every commit goes
    /// through; `normal` is NORMAL (1). GRDB sets NORMAL when it turns WAL on, after the
    /// connection's own set-up: a setting made only there would not hold.
    @Test(arguments: [(Spool.Durability.full, 2), (.normal, 1)])
    func theWriterCommitsWithTheDurabilityAskedFor(durability: Spool.Durability, expected: Int) throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: path, maxBytes: 1_000_000, durability: durability)
        #expect(try synchronous(of: spool) == expected)
        // Still so after commits, and for a spool opened again.
        for n in 0..<3 { _ = try spool.append(message(n)) }
        #expect(try synchronous(of: spool) == expected)
        let reopened = try Spool(path: path, maxBytes: 1_000_000, durability: durability)
        #expect(try synchronous(of: reopened) == expected)
    }

    /// A new spool file has ``Spool/pageSize`` pages; a file made with SQLite's default keeps
    /// its 4 kB pages and its messages.
    @Test func aNewSpoolHasSmallPagesAndAnOldOneKeepsItsOwn() throws {
        defer { try? FileManager.default.removeItem(at: folder) }
        do {
            let spool = try Spool(path: path, maxBytes: 1_000_000)
            _ = try spool.append(message(1))
            #expect(try spool.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == Spool.pageSize)
        }
        let older = folder.appendingPathComponent("older.sqlite").path
        let queue = try DatabaseQueue(path: older)
        try queue.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "CREATE TABLE filler (x)")
        }
        try queue.close()
        let spool = try Spool(path: older, maxBytes: 1_000_000)
        let sent = (0..<50).map(message)
        for one in sent { _ = try spool.append(one) }
        #expect(try spool.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 4096)
        #expect(try Spool(path: older, maxBytes: 1_000_000).entries().map(\.message) == sent)
    }

    func message(_ n: Int) -> DeviceMessage {
        DeviceMessage(
            id: MessageID(rawValue: "id-\(n)"), device: DeviceName("uno1")!, topic: "dtwin/uno1/up",
            payload: Array("sim-uno1 data \(n)".utf8), receivedAtMillis: 1_700_000_000_000 + Int64(n))
    }
}
