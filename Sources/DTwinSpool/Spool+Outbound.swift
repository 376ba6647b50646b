import DTwinSQLite
import Foundation
import GRDB
import Synchronization

/// A message the bridge publishes: a command or reply to a device, a dead letter, or a
/// device's twin document.
public struct OutboundMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var createdAtMillis: Int64
    /// Published with the retain flag. Only the newest retained message of a topic is worth
    /// publishing (the broker keeps one per topic), so queuing one replaces the older ones that
    /// still wait: a broker outage leaves one twin document per device to publish, not one per
    /// change.
    public var retain: Bool

    public init(topic: String, payload: [UInt8], createdAtMillis: Int64, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.createdAtMillis = createdAtMillis
        self.retain = retain
    }
}

/// The `outbound` table: what the bridge must publish, kept until the broker acknowledges it,
/// so a command accepted while the broker is down (or just before a crash) is published once
/// it is back.
extension Spool {
    public struct OutboundEntry: Sendable, Equatable {
        /// Order of acceptance; the table's key.
        public var seq: Int64
        public var message: OutboundMessage

        public init(seq: Int64, message: OutboundMessage) {
            self.seq = seq
            self.message = message
        }
    }

    static let createOutbound = """
        CREATE TABLE IF NOT EXISTS outbound (
            seq INTEGER PRIMARY KEY,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            createdAt INTEGER NOT NULL,
            retain INTEGER NOT NULL DEFAULT 0
        )
        """

    /// Spool files written before retained messages existed get the column (0: not retained).
    static func addRetainColumn(_ db: Database) throws {
        let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(outbound)").map { $0["name"] as String }
        if !columns.contains("retain") { try db.execute(sql: "ALTER TABLE outbound ADD COLUMN retain INTEGER NOT NULL DEFAULT 0") }
    }

    /// Bytes an outbound message takes in the spool's accounting (shared with inbound messages).
    public static func size(of message: OutboundMessage) -> Int {
        message.payload.count + message.topic.utf8.count + rowOverhead
    }

    static let outboundSizeInSQL = "length(payload) + length(CAST(topic AS BLOB)) + \(rowOverhead)"

    /// Writes `message` to disk and returns its sequence number. Blocks the calling thread.
    ///
    /// `bounded`: refuse when the spool is at `spool.maxBytes` (a new command from a person
    /// can be refused and retried). A reply or dead letter takes the place of a device message,
    /// so it is written regardless: refusing it would lose it. (What waits for the broker is
    /// thus not capped by `spool.maxBytes`; it drains as fast as the broker acknowledges.)
    public func appendOutbound(_ message: OutboundMessage, bounded: Bool) throws(SpoolError) -> Int64 {
        try reserveSpace(Self.size(of: message), counting: bounded ? .everything : .none)
        if message.retain {
            do {
                return try counted(
                    message, pool.writeWithoutTransaction { db in try db.inCachedTransaction { try Self.replacingRetained(message, in: db) } })
            } catch {
                throw writeError(error)
            }
        }
        let seq = try insert(Self.insertOutbound, Self.arguments(message))
        return counted(message, (seq, 0, 0))
    }

    /// ``appendOutbound(_:bounded:)`` for async callers (commands, replies, dead letters from
    /// the delivery workers, which run on the HTTP client's event loops): the write runs on the
    /// spool's own writer thread while the caller is suspended.
    public func appendOutbound(_ message: OutboundMessage, bounded: Bool) async throws(SpoolError) -> Int64 {
        try reserveSpace(Self.size(of: message), counting: bounded ? .everything : .none)
        if message.retain {
            do {
                return try await counted(
                    message, pool.writeWithoutTransaction { db in try db.inCachedTransaction { try Self.replacingRetained(message, in: db) } })
            } catch {
                throw writeError(error)
            }
        }
        let seq = try await insert(Self.insertOutbound, Self.arguments(message))
        return counted(message, (seq, 0, 0))
    }

    static let insertOutbound = "INSERT INTO outbound (topic, payload, createdAt, retain) VALUES (?, ?, ?, ?)"

    static func arguments(_ message: OutboundMessage) -> StatementArguments {
        [message.topic, Data(message.payload), message.createdAtMillis, message.retain]
    }

    /// In one transaction: the retained messages of the same topic that still wait are
    /// dropped (the new one supersedes them), and `message` is inserted.
    static func replacingRetained(_ message: OutboundMessage, in db: Database) throws -> (seq: Int64, count: Int, bytes: Int) {
        // Cached statements: every twin document published goes this way.
        let older = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT COUNT(*), COALESCE(SUM(\(outboundSizeInSQL)), 0) FROM outbound WHERE topic = ? AND retain = 1"),
            arguments: [message.topic])
        try db.cachedStatement(sql: "DELETE FROM outbound WHERE topic = ? AND retain = 1").execute(arguments: [message.topic])
        try db.cachedStatement(sql: insertOutbound).execute(arguments: arguments(message))
        return (db.lastInsertedRowID, older?[0] ?? 0, older?[1] ?? 0)
    }

    /// Counts `message` in, and what it replaced out; returns its sequence number.
    private func counted(_ message: OutboundMessage, _ written: (seq: Int64, count: Int, bytes: Int)) -> Int64 {
        let size = Self.size(of: message)
        state.withLock { state in
            state.bytes += size - written.bytes
            state.outboundBytes += size - written.bytes
            state.outboundCount += 1 - written.count
        }
        return written.seq
    }

    /// The oldest `limit` messages waiting to be published, oldest first.
    public func outbound(limit: Int) throws(SpoolError) -> [OutboundEntry] {
        try read { db in
            // Cached: the publish queue reads here for every message it publishes.
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT seq, topic, payload, createdAt, retain FROM outbound ORDER BY seq LIMIT ?"), arguments: [limit]
            )
            .map { row in
                let payload: Data = row[2]
                return OutboundEntry(
                    seq: row[0],
                    message: OutboundMessage(topic: row[1], payload: Array(payload), createdAtMillis: row[3], retain: row[4]))
            }
        }
    }

    /// Whether `seq` still waits to be published.
    public func outboundContains(_ seq: Int64) throws(SpoolError) -> Bool {
        try read { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM outbound WHERE seq = ?)"), arguments: [seq]) ?? false
        }
    }

    /// Deletes published messages, in one transaction. One that a newer retained message
    /// replaced meanwhile is gone already, and is not counted out twice.
    public func removeOutbound(_ entries: [OutboundEntry]) async throws(SpoolError) {
        guard !entries.isEmpty else { return }
        let deleted: [Bool]
        do {
            deleted = try await delete(entries.map(\.seq), from: "outbound")
        } catch {
            throw SpoolError("cannot remove published messages from the spool: \(SpoolError.describe(error))")
        }
        let entries = zip(entries, deleted).filter(\.1).map(\.0)
        let bytes = entries.reduce(0) { $0 + Self.size(of: $1.message) }
        state.withLock { state in
            state.bytes -= bytes
            state.outboundBytes -= bytes
            state.outboundCount -= entries.count
        }
    }
}
