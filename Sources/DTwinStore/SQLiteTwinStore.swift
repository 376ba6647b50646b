import DTwinContract
import DTwinSQLite
import Foundation
import GRDB
import Synchronization

/// The twin table in an SQLite file (the embedded default store), in WAL mode so that readers
/// (`dtwin readings`, the API) never block the bridge's writes.
public final class SQLiteTwinStore: TwinStore {
    private let pool: DatabasePool
    private let table: String
    private let puts = Mutex(PutBatch())
    /// The items' INSERT, made once: it is the cache key of its prepared statement.
    private let insertSQL: String

    /// Each connection's page cache, in kB (`PRAGMA cache_size`).
    static let cacheKilobytes = 512

    /// Opens (creating if needed) the database at `path` with the twin table `table`.
    public init(path: String, table: String = "digitaltwin") throws {
        guard !table.isEmpty,
            table.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) })
        else {
            throw StoreError("store.table \(table.debugDescription) must be letters, digits and _ only")
        }
        self.table = table
        insertSQL = """
            INSERT OR IGNORE INTO "\(table)"
            (messageid, device, ts, payload, payloadEncoding, kind, value, seq, source)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        var configuration = Configuration()
        // Another process (the CLI, a second reader) may hold the lock briefly: wait rather than fail.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Each connection's page cache (SQLite's default: up to 2 MB) holds pages it touched
            // lately. Items are appended in time order, so the writer's hot pages are the table's
            // end and one index leaf per device: 512 kB holds them, with memory to spare.
            try db.execute(sql: "PRAGMA cache_size = -\(Self.cacheKilobytes)")
        }
        do {
            pool = try Self.open(path: path, configuration: configuration, migrator: Self.migrator(table: table))
        } catch {
            throw StoreError("cannot open the SQLite store at \(path.debugDescription): \(Self.describe(error))")
        }
    }

    /// Opens and migrates the file, again when another process doing the same got in the way:
    /// instances of a group start together on one new file. Two things fail then, and neither
    /// waits on the busy timeout: SQLite answers `PRAGMA journal_mode = WAL` with "database is
    /// locked" while another connection switches the mode; and GRDB's migrator, safe between the
    /// connections of one process only, reads which migrations are applied before it takes the
    /// write lock, so both run the first one and the later fails on `grdb_migrations`' key. Its
    /// transaction was rolled back; the next attempt sees the other's migrations as applied.
    private static func open(path: String, configuration: Configuration, migrator: DatabaseMigrator) throws -> DatabasePool {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try migrator.migrate(pool)
                return pool
            } catch let error as DatabaseError
                where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_CONSTRAINT) && ContinuousClock.now < deadline
            {
                Thread.sleep(forTimeInterval: .random(in: 0.01...0.05))
            }
        }
    }

    private static func migrator(table: String) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-\(table)") { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS "\(table)" (
                        messageid TEXT PRIMARY KEY NOT NULL,
                        device TEXT NOT NULL,
                        ts TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        payloadEncoding TEXT,
                        kind TEXT NOT NULL,
                        value REAL,
                        seq INTEGER,
                        source TEXT NOT NULL
                    );
                    CREATE INDEX IF NOT EXISTS "\(table)_device_ts" ON "\(table)" (device, ts);
                    """)
        }
        // Twin documents (issue 19) beside the items, one row a device, its version the key to
        // conditional writes.
        migrator.registerMigration("v2-\(table)-state") { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS "\(table)_state" (
                        device TEXT PRIMARY KEY NOT NULL,
                        version INTEGER NOT NULL,
                        document TEXT NOT NULL
                    )
                    """)
        }
        return migrator
    }

    public func twin(_ device: DeviceName) async throws -> TwinDocument? {
        let table = self.table
        let text: String?
        do {
            // One statement, outside a transaction (``Database/inCachedTransaction(_:)``).
            text = try await pool.unsafeRead { db in
                // Cached statements: the twins are read and written several times a second.
                try String.fetchOne(
                    db.cachedStatement(sql: "SELECT document FROM \"\(table)_state\" WHERE device = ?"), arguments: [device.rawValue])
            }
        } catch {
            throw StoreError("reading the twin of \(device) failed: \(Self.describe(error))")
        }
        guard let text else { return nil }
        do { return try TwinDocument(json: Array(text.utf8)) } catch {
            throw StoreError("the stored twin of \(device) cannot be read: \(error)")
        }
    }

    public func putTwin(_ document: TwinDocument, replacing version: Int64) async throws -> Bool {
        let table = self.table
        let text = String(decoding: document.json(withDelta: false), as: UTF8.self)
        do {
            return try await pool.writeWithoutTransaction { db in
                try db.inCachedTransaction {
                    let stored = try Int64.fetchOne(
                        db.cachedStatement(sql: "SELECT version FROM \"\(table)_state\" WHERE device = ?"), arguments: [document.device])
                    guard (stored ?? 0) == version else { return false }
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO \"\(table)_state\" (device, version, document) VALUES (?, ?, ?)")
                        .execute(arguments: [document.device, document.version, text])
                    return true
                }
            }
        } catch {
            throw StoreError("storing the twin of \(document.device) failed: \(Self.describe(error))")
        }
    }

    /// Group commit: the puts that arrive while a transaction is being written wait, and the
    /// next transaction writes them all. Each put still returns only once its item is
    /// committed; under load a commit (and the hop to GRDB's writer) serves many messages
    /// instead of one each.
    public func put(_ item: TwinItem) async throws -> Bool {
        let turn: PutTurn = await withCheckedContinuation { continuation in
            let leads = puts.withLock { batch in
                if batch.writing {
                    batch.waiting.append(WaitingPut(item: item, continuation: continuation))
                    return false
                }
                batch.writing = true
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .stored(let result):
            return try result.get()
        case .lead:
            // This put writes its own item and every one waiting, then hands the next batch to
            // the first put that arrives meanwhile (so no caller writes for others forever).
            let others = puts.withLock { batch in
                var taken: [WaitingPut] = []
                swap(&taken, &batch.waiting)
                return taken
            }
            let written = await insert([item] + others.map(\.item))
            for (index, other) in others.enumerated() {
                other.continuation.resume(returning: .stored(written.result(at: index + 1, messageId: other.item.messageId)))
            }
            let next = puts.withLock { batch -> WaitingPut? in
                guard !batch.waiting.isEmpty else {
                    batch.writing = false
                    return nil
                }
                return batch.waiting.removeFirst()
            }
            next?.continuation.resume(returning: .lead)
            return try written.result(at: 0, messageId: item.messageId).get()
        }
    }

    /// Inserts the items in one transaction: for each, whether it was new. One item (a quiet
    /// moment: each message its own batch) is one INSERT in autocommit mode, its own
    /// transaction without a BEGIN and COMMIT.
    private func insert(_ items: [TwinItem]) async -> WrittenBatch {
        let sql = insertSQL
        let write = { @Sendable (db: Database) throws -> [Bool] in
            try items.map { item in
                try db.runCached(sql) { row in
                    row.bind(item.messageId)
                    row.bind(item.device)
                    row.bind(item.ts)
                    row.bind(item.payload)
                    row.bind(item.payloadEncoding)
                    row.bind(item.kind.rawValue)
                    row.bind(item.value)
                    row.bind(item.seq)
                    row.bind(item.source)
                }
                return db.changesCount > 0
            }
        }
        do {
            return .stored(
                try await pool.writeWithoutTransaction { db in try items.count == 1 ? write(db) : db.inCachedTransaction { try write(db) } })
        } catch {
            return .failed(Self.describe(error))
        }
    }

    public func items(device: DeviceName, since: Int64?, until: Int64?, limit: Int) async throws -> [TwinItem] {
        let table = self.table
        var conditions = ["device = ?"]
        var arguments: StatementArguments = [device.rawValue]
        // ISO-8601 strings of one fixed shape sort in time order, so the index serves ranges.
        if let since {
            conditions.append("ts >= ?")
            arguments += [Timestamp.iso8601(millis: since)]
        }
        if let until {
            conditions.append("ts < ?")
            arguments += [Timestamp.iso8601(millis: until)]
        }
        arguments += [max(0, limit)]
        let bound = arguments
        let sql = """
            SELECT * FROM "\(table)" WHERE \(conditions.joined(separator: " AND "))
            ORDER BY ts DESC, messageid DESC LIMIT ?
            """
        do {
            return try await pool.read { db in
                try Row.fetchAll(db, sql: sql, arguments: bound).map(Self.item)
            }
        } catch {
            throw StoreError("reading items of \(device) failed: \(Self.describe(error))")
        }
    }

    public func devices() async throws -> [DeviceSummary] {
        let table = self.table
        do {
            return try await pool.read { db in
                let counts = try Row.fetchAll(
                    db, sql: "SELECT device, COUNT(*) AS n, MAX(ts) AS last FROM \"\(table)\" GROUP BY device ORDER BY device")
                return try counts.compactMap { row -> DeviceSummary? in
                    let device: String = row["device"]
                    let latest = try Row.fetchOne(
                        db, sql: "SELECT * FROM \"\(table)\" WHERE device = ? ORDER BY ts DESC, messageid DESC LIMIT 1",
                        arguments: [device])
                    return latest.map { DeviceSummary(device: device, count: row["n"], latest: Self.item($0)) }
                }
            }
        } catch {
            throw StoreError("listing devices failed: \(Self.describe(error))")
        }
    }

    /// One cheap read of the table: fails when the file is gone, unreadable or not a database.
    public func check() async throws {
        let table = self.table
        do {
            _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1 FROM \"\(table)\" LIMIT 1") }
        } catch {
            throw StoreError("the SQLite store cannot be read: \(Self.describe(error))")
        }
    }

    public func close() async throws {
        try pool.close()
    }

    /// Commits are written with `synchronous=NORMAL` (GRDB's WAL default): into the WAL without
    /// a sync, durable at SQLite's next checkpoint (every 1,000 pages). The spool waits for this
    /// before letting delivered messages go (``Spool/removalsWait(for:)``), once per batch of
    /// removals: the WAL, then the database file (a checkpoint may have copied pages into it).
    public func makeDurable() async throws {
        let files = [pool.path + "-wal", pool.path]
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            // Off the cooperative threads: an fsync takes milliseconds.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try files.forEach(Self.sync) })
            }
        }
    }

    /// fsync(2) of one file; one that does not exist (no WAL yet) has nothing to sync.
    private static func sync(_ path: String) throws {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return }
            throw StoreError("cannot open \(path.debugDescription) to sync it: \(String(cString: strerror(errno)))")
        }
        defer { _ = Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else {
            throw StoreError("cannot sync \(path.debugDescription) to disk: \(String(cString: strerror(errno)))")
        }
    }

    private static func item(_ row: Row) -> TwinItem {
        TwinItem(
            messageId: row["messageid"], device: row["device"], ts: row["ts"], payload: row["payload"],
            payloadEncoding: row["payloadEncoding"],
            kind: DevicePayload.Kind(rawValue: row["kind"]) ?? .raw, value: row["value"], seq: row["seq"],
            source: row["source"])
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}

/// The puts of ``SQLiteTwinStore``'s group commit: whether a transaction is being written, and
/// who waits for the next one.
private struct PutBatch {
    var writing = false
    var waiting: [WaitingPut] = []
}

private struct WaitingPut {
    let item: TwinItem
    let continuation: CheckedContinuation<PutTurn, Never>
}

/// What a waiting put is told: its item's outcome, or that it writes the next batch.
private enum PutTurn {
    case stored(Result<Bool, StoreError>)
    case lead
}

/// One transaction's outcome: whether each item was new, or why none was stored.
private enum WrittenBatch {
    case stored([Bool])
    case failed(String)

    func result(at index: Int, messageId: String) -> Result<Bool, StoreError> {
        switch self {
        case .stored(let inserted): .success(inserted[index])
        case .failed(let reason): .failure(StoreError("storing message \(messageId) failed: \(reason)"))
        }
    }
}
