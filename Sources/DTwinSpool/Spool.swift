import DTwinContract
import DTwinSQLite
import Foundation
import GRDB
import Synchronization

/// The bridge's durable spool: every device message is on disk before the broker is told it
/// arrived, and leaves the spool only once the upstream has answered 2xx or it has been
/// dead-lettered. Messages the bridge publishes (commands, replies, dead letters) wait in the
/// same file until the broker acknowledges them (`Spool+Outbound.swift`).
///
/// An SQLite file in WAL mode (GRDB). ``append(_:)`` is synchronous on purpose: it runs on the
/// MQTT client's own network thread, where libmosquitto sends the PUBACK only after the message
/// callback returns; blocking there is what makes "acknowledged" mean "on disk". Removals are
/// many and need no hurry (a message delivered twice after a crash carries the same
/// `MessageId`), so ``remove(_:message:)`` only notes the entry and ``commitRemovals()`` deletes the
/// notes in one transaction.
public final class Spool: Sendable {
    public struct Entry: Sendable, Equatable {
        /// Order of arrival; the spool's key. (Plain `INTEGER PRIMARY KEY`, not AUTOINCREMENT:
        /// a number is reused only after its message has left, and AUTOINCREMENT would write
        /// a second page, `sqlite_sequence`, on every commit.)
        public var seq: Int64
        public var message: DeviceMessage
    }

    /// How hard SQLite works to keep a commit across a power cut (`spool.sync`).
    public enum Durability: String, Sendable, CaseIterable {
        /// Every commit survives a crash or SIGKILL of the bridge; after a power cut the
        /// commits since the last WAL checkpoint may be gone (SQLite `synchronous=NORMAL`).
        case normal
        /// Every commit is fsynced before the broker is acknowledged (`synchronous=FULL`):
        /// survives a power cut too, at one disk flush per message.
        case full
    }

    struct State {
        var bytes = 0
        var count = 0
        var outboundCount = 0
        /// The part of `bytes` that waits for the broker.
        var outboundBytes = 0
        var pendingRemovals: [Int64] = []
        var removalBytes = 0
        var closed = false
    }

    public let path: String
    public let maxBytes: Int
    let pool: DatabasePool
    /// A connection of its own for ``checkpoint()`` and ``restartWAL()``, so that checkpoints
    /// run neither on the MQTT thread nor in the pool's writer queue.
    let checkpointer: DatabaseQueue
    /// The WAL's length after the writer's last commit (`Spool+WAL.swift`).
    let walWatch: WALWatch
    let state = Mutex(State())
    /// Run before delivered messages leave the file (``removalsWait(for:)``).
    let removalGate = Mutex<(@Sendable () async throws -> Void)?>(nil)

    /// A row's fixed overhead in the spool's accounting.
    static let rowOverhead = 64

    /// The page size of a new spool file. Every commit writes its pages whole to the WAL and
    /// checksums them there, and a device message's row (a few hundred bytes) changes one page:
    /// with SQLite's default of 4 kB, writing the WAL's frames took about 12,700 instructions a
    /// message, with 1 kB about 6,500 (callgrind, issue 22), and a WAL of ``walRestartFrames``
    /// is 1 MB to copy back instead of 4. A larger payload takes more overflow pages (the same
    /// bytes); an existing spool file keeps the page size it was made with.
    public static let pageSize = 1024

    /// Bytes a message takes in the spool's accounting: its payload, topic and id (UTF-8),
    /// plus ``rowOverhead``. The same sum in SQL re-counts an existing spool at start-up.
    public static func size(of message: DeviceMessage) -> Int {
        message.payload.count + message.topic.utf8.count + message.id.rawValue.utf8.count + rowOverhead
    }

    static let sizeInSQL =
        "length(payload) + length(CAST(topic AS BLOB)) + length(CAST(messageId AS BLOB)) + \(rowOverhead)"

    /// Opens (creating if needed) the spool at `path`.
    public init(path: String, maxBytes: Int, durability: Durability = .normal) throws(SpoolError) {
        self.path = path
        self.maxBytes = maxBytes
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !folder.isEmpty { try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let walWatch = WALWatch()
        self.walWatch = walWatch
        var configuration = Configuration()
        configuration.busyMode = .callback(Self.writerBusyWait)
        configuration.prepareDatabase { db in
            // A new spool's pages (an existing file keeps its own): see ``pageSize``.
            try db.execute(sql: "PRAGMA page_size = \(Self.pageSize)")
            // Only the writer commits, but any connection may be it.
            Self.watchWAL(of: db, into: walWatch)
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // After the pool is open: GRDB sets `synchronous = NORMAL` on the writer when it
            // turns WAL on, which comes after `prepareDatabase`, so `spool.sync: full` set there
            // was silently undone. The writer is the one connection that commits.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
            }
            var checkpointing = Configuration()
            checkpointing.busyMode = .callback(Self.restartBusyWait)
            checkpointer = try DatabaseQueue(path: path, configuration: checkpointing)
            try pool.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE IF NOT EXISTS inbound (
                            seq INTEGER PRIMARY KEY,
                            messageId TEXT NOT NULL,
                            device TEXT NOT NULL,
                            topic TEXT NOT NULL,
                            payload BLOB NOT NULL,
                            receivedAt INTEGER NOT NULL,
                            source TEXT NOT NULL
                        )
                        """)
                try db.execute(sql: Self.createOutbound)
                try Self.addRetainColumn(db)
                try db.execute(sql: Self.createSids)
                let inbound = try Row.fetchOne(
                    db, sql: "SELECT COUNT(*), COALESCE(SUM(\(Self.sizeInSQL)), 0) FROM inbound")
                let outbound = try Row.fetchOne(
                    db, sql: "SELECT COUNT(*), COALESCE(SUM(\(Self.outboundSizeInSQL)), 0) FROM outbound")
                state.withLock { state in
                    state.count = inbound?[0] ?? 0
                    state.outboundCount = outbound?[0] ?? 0
                    state.outboundBytes = outbound?[1] ?? 0
                    state.bytes = (inbound?[1] ?? 0) + state.outboundBytes
                }
            }
        } catch {
            throw SpoolError("cannot open the spool at \(path.debugDescription): \(SpoolError.describe(error))")
        }
    }

    // MARK: the network thread's side

    /// Writes `message` to disk and returns its sequence number. Blocks the calling thread;
    /// throws ``SpoolError`` when the message cannot be written (spool full, disk full,
    /// unwritable file). Never call it on Swift's cooperative pool.
    public func append(_ message: DeviceMessage) throws(SpoolError) -> Int64 {
        try reserveSpace(Self.size(of: message), counting: .deviceMessages)
        let seq = try insert { db in try Self.insertInbound(message, in: db) }
        counted(message)
        return seq
    }

    /// The device message's INSERT (both ``append(_:)``s), bound with SQLite's own calls
    /// (``DirectBindings``): every message takes this path on the MQTT thread.
    static func insertInbound(_ message: DeviceMessage, in db: Database) throws -> Int64 {
        try db.runCached(insertInbound) { row in
            row.bind(message.id.rawValue)
            row.bind(message.device.rawValue)
            row.bind(message.topic)
            // An empty payload is an empty BLOB, never NULL (the column is NOT NULL).
            row.bind(blob: message.payload)
            row.bind(message.receivedAtMillis)
            row.bind(message.source.rawValue)
        }
        return db.lastInsertedRowID
    }

    /// ``append(_:)`` for async callers (a webhook): the write runs on the spool's own writer
    /// thread while the caller is suspended, never on an event loop or the cooperative pool.
    public func append(_ message: DeviceMessage) async throws(SpoolError) -> Int64 {
        try reserveSpace(Self.size(of: message), counting: .deviceMessages)
        let seq = try await insert { db in try Self.insertInbound(message, in: db) }
        counted(message)
        return seq
    }

    static let insertInbound = "INSERT INTO inbound (messageId, device, topic, payload, receivedAt, source) VALUES (?, ?, ?, ?, ?, ?)"

    private func counted(_ message: DeviceMessage) {
        state.withLock { state in
            state.bytes += Self.size(of: message)
            state.count += 1
        }
    }

    /// What a new message is measured against ``maxBytes`` with.
    enum Limit {
        /// Device messages only. Messages waiting for the broker do not count: they leave only
        /// when a PUBACK is read, on the very thread a device message blocks while the spool
        /// refuses it, so counting them could hold that thread for ever.
        case deviceMessages
        /// Everything in the spool (a command from a person).
        case everything
        /// No limit (a reply or dead letter, which takes the place of a device message).
        case none
    }

    /// Throws when the spool is closed, or when `size` more bytes would pass ``maxBytes`` as
    /// `limit` counts.
    func reserveSpace(_ size: Int, counting limit: Limit) throws(SpoolError) {
        try state.withLock { state throws(SpoolError) in
            if state.closed { throw SpoolError("the spool is closed") }
            // Space still held by delivered messages whose removal is not committed yet counts
            // as free: it will be, within one commit. An empty spool takes any one message.
            let used: Int
            switch limit {
            case .none: return
            case .deviceMessages: used = state.bytes - state.outboundBytes - state.removalBytes
            case .everything: used = state.bytes - state.removalBytes
            }
            if used + size > maxBytes && state.count + state.outboundCount > 0 {
                throw SpoolError(
                    "the spool is full: \(state.bytes) of \(maxBytes) bytes (spool.maxBytes) in \(state.count) messages from devices and \(state.outboundCount) to publish",
                    full: true)
            }
        }
    }

    // MARK: the delivery side

    /// Every message in the spool, oldest first: what a restarted bridge delivers before anything new.
    public func entries() throws(SpoolError) -> [Entry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT seq, messageId, device, topic, payload, receivedAt, source FROM inbound ORDER BY seq")
                .compactMap { row -> Entry? in
                    // A name that no longer validates cannot be delivered under it; such
                    // rows stay in the file for an operator rather than vanish.
                    guard let device = DeviceName(row[2] as String) else { return nil }
                    let payload: Data = row[4]
                    return Entry(
                        seq: row[0],
                        message: DeviceMessage(
                            id: MessageID(rawValue: row[1]), device: device, topic: row[3], payload: Array(payload),
                            receivedAtMillis: row[5], source: DeviceMessage.Source(rawValue: row[6]) ?? .mqtt))
                }
        }
    }

    /// Notes that the message `seq` was delivered or dead-lettered; it leaves the file at the
    /// next ``commitRemovals()``, and its ``size(of:)`` counts as free space at once.
    public func remove(_ seq: Int64, message: DeviceMessage) {
        let size = Self.size(of: message)
        state.withLock { state in
            state.pendingRemovals.append(seq)
            state.removalBytes += size
        }
    }

    /// From now on, delivered messages leave the file only after `gate` has returned: where they
    /// were delivered to must hold them across a power cut first. The `local` upstream's SQLite
    /// twin table commits without syncing (`synchronous=NORMAL`), and the spool's removal
    /// reaches the disk within a second (``SpoolMaintenance``): without the gate a power cut
    /// could take readings that the twin table had stored and the spool had already let go.
    public func removalsWait(for gate: @escaping @Sendable () async throws -> Void) {
        removalGate.withLock { $0 = gate }
    }

    /// Whether removals wait for a gate (``removalsWait(for:)``).
    public var removalsAreGated: Bool { removalGate.withLock { $0 != nil } }

    /// Deletes every noted removal in one transaction, after the gate (``removalsWait(for:)``)
    /// has passed. Returns how many were deleted.
    @discardableResult
    public func commitRemovals() async throws(SpoolError) -> Int {
        let (seqs, bytes) = state.withLock { state in
            defer {
                state.pendingRemovals.removeAll(keepingCapacity: true)
                state.removalBytes = 0
            }
            return (state.pendingRemovals, state.removalBytes)
        }
        guard !seqs.isEmpty else { return 0 }
        do {
            // Taken after the removals: everything delivered before them is covered.
            if let gate = removalGate.withLock({ $0 }) { try await gate() }
            try await delete(seqs, from: "inbound")
        } catch {
            // Put them back: they are retried at the next commit.
            state.withLock { state in
                state.pendingRemovals.append(contentsOf: seqs)
                state.removalBytes += bytes
            }
            throw SpoolError("cannot remove delivered messages from the spool: \(SpoolError.describe(error))")
        }
        state.withLock { state in
            state.bytes -= bytes
            state.count -= seqs.count
        }
        return seqs.count
    }

    /// Device messages in the spool (delivered ones whose removal is not yet committed included).
    public var count: Int { state.withLock { $0.count } }

    /// Messages waiting to be published (``appendOutbound(_:bounded:)``).
    public var outboundCount: Int { state.withLock { $0.outboundCount } }

    /// Bytes in the spool, in the accounting ``maxBytes`` is measured in.
    public var bytes: Int { state.withLock { $0.bytes } }

    /// Refuses further appends (shutdown).
    public func close() {
        state.withLock { $0.closed = true }
    }
}

// MARK: SQLite, with failures in words

extension Spool {
    /// One INSERT in autocommit mode, which is its own transaction: the same durability as
    /// BEGIN/INSERT/COMMIT with a third of the statements on the hot path. Returns the row's seq.
    func insert(_ sql: String, _ arguments: StatementArguments) throws(SpoolError) -> Int64 {
        try insert { db in try Self.insert(sql, arguments, in: db) }
    }

    /// The same INSERT through GRDB's async API: it runs on the pool's serial writer queue (an
    /// fsync with `spool.sync: full` included) while the calling task is suspended.
    func insert(_ sql: String, _ arguments: StatementArguments) async throws(SpoolError) -> Int64 {
        try await insert { db in try Self.insert(sql, arguments, in: db) }
    }

    /// Runs `statement`, an INSERT in autocommit mode, on the writer; a failure in words.
    func insert(_ statement: (Database) throws -> Int64) throws(SpoolError) -> Int64 {
        do {
            return try pool.writeWithoutTransaction(statement)
        } catch {
            throw writeError(error)
        }
    }

    /// The same through GRDB's async API.
    func insert(_ statement: @escaping @Sendable (Database) throws -> Int64) async throws(SpoolError) -> Int64 {
        do {
            return try await pool.writeWithoutTransaction(statement)
        } catch {
            throw writeError(error)
        }
    }

    private static func insert(_ sql: String, _ arguments: StatementArguments, in db: Database) throws -> Int64 {
        try db.cachedStatement(sql: sql).execute(arguments: arguments)
        return db.lastInsertedRowID
    }

    func writeError(_ error: any Error) -> SpoolError {
        SpoolError("cannot write to the spool at \(path.debugDescription): \(SpoolError.describe(error))")
    }

    /// Runs `body`, one statement (each read here is one), outside a transaction: a statement
    /// reads one consistent state on its own, and GRDB's `read` would wrap it in a BEGIN and
    /// COMMIT it prepares anew each time (``Database/inCachedTransaction(_:)``).
    func read<T>(_ body: (Database) throws -> T) throws(SpoolError) -> T {
        do {
            return try pool.unsafeRead(body)
        } catch {
            throw SpoolError("cannot read the spool at \(path.debugDescription): \(SpoolError.describe(error))")
        }
    }

    /// Deletes rows `seqs` of `table` in one transaction; says of each whether it was there.
    /// Bound with SQLite's own calls, as ``insertInbound(_:in:)``: every delivered message
    /// comes this way, and GRDB's generic binding cost more than the DELETE itself.
    @discardableResult
    func delete(_ seqs: [Int64], from table: String) async throws -> [Bool] {
        try await pool.writeWithoutTransaction { db in
            let sql = "DELETE FROM \(table) WHERE seq = ?"
            return try db.inCachedTransaction {
                try seqs.map { seq in
                    try db.runCached(sql) { $0.bind(seq) }
                    return db.changesCount > 0
                }
            }
        }
    }
}

/// A spool failure, in words that name the file and the setting involved.
public struct SpoolError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// The spool is at `spool.maxBytes` (as opposed to an I/O failure).
    public var isFull: Bool

    public init(_ description: String, full: Bool = false) {
        self.description = description
        self.isFull = full
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return error.message.map { "\($0) (SQLite \(error.resultCode))" } ?? "SQLite \(error.resultCode)"
        }
        return "\(error)"
    }
}
