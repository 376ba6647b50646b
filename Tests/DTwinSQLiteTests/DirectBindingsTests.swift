import DTwinSQLite
import Foundation
import GRDB
import Testing

/// SQLite's own binding calls and cached transactions (issue 22), on a real SQLite file.
@Suite struct DirectBindingsTests {
    static func database() throws -> (DatabaseQueue, URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: folder.appendingPathComponent("test.sqlite").path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT NOT NULL, maybe TEXT, blob BLOB NOT NULL, n INTEGER, r REAL)")
        }
        return (queue, folder)
    }

    static let insert = "INSERT INTO t (text, maybe, blob, n, r) VALUES (?, ?, ?, ?, ?)"

    /// Each kind of value reads back as it was bound; empty text and bytes stay empty, not NULL.
    @Test func everyKindOfValueReadsBackAsBound() throws {
        let (queue, folder) = try Self.database()
        defer { try? FileManager.default.removeItem(at: folder) }
        let rows: [(String, String?, [UInt8], Int64?, Double?)] = [
            ("température ✓ 🌡", "x", [0, 1, 255], .max, -734.25),
            ("", nil, [], nil, nil),
            ("a\tb \"q\"", "", [7], .min, 0.1),
        ]
        try queue.writeWithoutTransaction { db in
            for (text, maybe, blob, n, r) in rows {
                try db.runCached(Self.insert) { row in
                    row.bind(text)
                    row.bind(maybe)
                    row.bind(blob: blob)
                    row.bind(n)
                    row.bind(r)
                }
                #expect(db.changesCount == 1)
            }
        }
        let read = try queue.read { db in try Row.fetchAll(db, sql: "SELECT text, maybe, blob, n, r FROM t ORDER BY id") }
        #expect(read.count == rows.count)
        for (row, expected) in zip(read, rows) {
            #expect(row[0] as String == expected.0)
            #expect(row[1] as String? == expected.1)
            #expect(Array(row[2] as Data) == expected.2)
            #expect(row[3] as Int64? == expected.3)
            #expect(row[4] as Double? == expected.4)
        }
    }

    /// A refused row throws SQLite's reason, and the cached statement runs again afterwards.
    @Test func aRefusedRowThrowsSQLitesReason() throws {
        let (queue, folder) = try Self.database()
        defer { try? FileManager.default.removeItem(at: folder) }
        try queue.writeWithoutTransaction { db in
            #expect {
                try db.runCached("INSERT INTO t (text, blob) VALUES (?, ?)") { row in
                    row.bindNull()
                    row.bind(blob: [1])
                }
            } throws: { error in
                (error as? DatabaseError)?.message?.contains("NOT NULL constraint failed: t.text") == true
            }
            try db.runCached("INSERT INTO t (text, blob) VALUES (?, ?)") { row in
                row.bind("fine")
                row.bind(blob: [1])
            }
        }
        #expect(try queue.read { db in try String.fetchAll(db, sql: "SELECT text FROM t") } == ["fine"])
    }

    /// A body that throws leaves nothing behind, and the next transaction begins as usual.
    @Test func aTransactionThatThrowsIsRolledBack() throws {
        let (queue, folder) = try Self.database()
        defer { try? FileManager.default.removeItem(at: folder) }
        struct Refused: Error {}
        try queue.writeWithoutTransaction { db in
            #expect(throws: Refused.self) {
                try db.inCachedTransaction {
                    try db.execute(sql: "INSERT INTO t (text, blob) VALUES ('gone', x'00')")
                    throw Refused()
                }
            }
            #expect(!db.isInsideTransaction)
            let kept = try db.inCachedTransaction {
                try db.execute(sql: "INSERT INTO t (text, blob) VALUES ('kept', x'00')")
                return db.lastInsertedRowID
            }
            #expect(kept > 0 && !db.isInsideTransaction)
        }
        #expect(try queue.read { db in try String.fetchAll(db, sql: "SELECT text FROM t") } == ["kept"])
    }
}
