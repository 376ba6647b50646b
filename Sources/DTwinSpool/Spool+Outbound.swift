import Foundation
import GRDB
import Synchronization

/// A message the bridge publishes: a command or reply to a device, or a dead letter.
public struct OutboundMessage: Sendable, Equatable {
    public var topic: String
    public var payload: [UInt8]
    public var createdAtMillis: Int64

    public init(topic: String, payload: [UInt8], createdAtMillis: Int64) {
        self.topic = topic
        self.payload = payload
        self.createdAtMillis = createdAtMillis
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
            createdAt INTEGER NOT NULL
        )
        """

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
        let seq = try insert(Self.insertOutbound, [message.topic, Data(message.payload), message.createdAtMillis])
        counted(message)
        return seq
    }

    /// ``appendOutbound(_:bounded:)`` for async callers (commands, replies, dead letters from
    /// the delivery workers, which run on the HTTP client's event loops): the write runs on the
    /// spool's own writer thread while the caller is suspended.
    public func appendOutbound(_ message: OutboundMessage, bounded: Bool) async throws(SpoolError) -> Int64 {
        try reserveSpace(Self.size(of: message), counting: bounded ? .everything : .none)
        let seq = try await insert(Self.insertOutbound, [message.topic, Data(message.payload), message.createdAtMillis])
        counted(message)
        return seq
    }

    static let insertOutbound = "INSERT INTO outbound (topic, payload, createdAt) VALUES (?, ?, ?)"

    private func counted(_ message: OutboundMessage) {
        let size = Self.size(of: message)
        state.withLock { state in
            state.bytes += size
            state.outboundBytes += size
            state.outboundCount += 1
        }
    }

    /// The oldest `limit` messages waiting to be published, oldest first.
    public func outbound(limit: Int) throws(SpoolError) -> [OutboundEntry] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT seq, topic, payload, createdAt FROM outbound ORDER BY seq LIMIT ?", arguments: [limit])
                .map { row in
                    let payload: Data = row[2]
                    return OutboundEntry(
                        seq: row[0], message: OutboundMessage(topic: row[1], payload: Array(payload), createdAtMillis: row[3]))
                }
        }
    }

    /// Whether `seq` still waits to be published.
    public func outboundContains(_ seq: Int64) throws(SpoolError) -> Bool {
        try read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM outbound WHERE seq = ?)", arguments: [seq]) ?? false
        }
    }

    /// Deletes published messages, in one transaction.
    public func removeOutbound(_ entries: [OutboundEntry]) async throws(SpoolError) {
        guard !entries.isEmpty else { return }
        do {
            try await delete(entries.map(\.seq), from: "outbound")
        } catch {
            throw SpoolError("cannot remove published messages from the spool: \(SpoolError.describe(error))")
        }
        let bytes = entries.reduce(0) { $0 + Self.size(of: $1.message) }
        state.withLock { state in
            state.bytes -= bytes
            state.outboundBytes -= bytes
            state.outboundCount -= entries.count
        }
    }
}
