import GRDB

/// The `webhook_sids` table: the SIDs of the Twilio webhooks the bridge acted on (an SMS's
/// `MessageSid`, an IP command's `Sid`). Twilio's signature has no time in it, so a request
/// captured on the way stays valid forever: replayed, it must find its SID here, after a
/// restart too. Kept for ``sidRetentionMillis`` and at most ``sidCapacity`` of them (the newest),
/// which bounds the file at a few megabytes.
extension Spool {
    /// 30 days: far longer than Twilio retries a webhook (minutes).
    public static let sidRetentionMillis: Int64 = 30 * 24 * 3600 * 1000
    public static let sidCapacity = 100_000

    static let createSids = """
        CREATE TABLE IF NOT EXISTS webhook_sids (
            sid TEXT PRIMARY KEY,
            seenAt INTEGER NOT NULL
        ) WITHOUT ROWID
        """

    /// Records `sid`; `true` when it is new, `false` when it was recorded before.
    public func claimSid(_ sid: String, atMillis: Int64) async throws(SpoolError) -> Bool {
        do {
            return try await pool.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO webhook_sids (sid, seenAt) VALUES (?, ?)", arguments: [sid, atMillis])
                return db.changesCount == 1
            }
        } catch {
            throw writeError(error)
        }
    }

    /// Forgets `sid` (its action failed, so Twilio's retry may act).
    public func releaseSid(_ sid: String) async {
        _ = try? await pool.write { db in try db.execute(sql: "DELETE FROM webhook_sids WHERE sid = ?", arguments: [sid]) }
    }

    /// Deletes the SIDs older than the retention and the oldest beyond the capacity; returns how
    /// many went.
    @discardableResult
    public func pruneSids(nowMillis: Int64, retentionMillis: Int64 = sidRetentionMillis, capacity: Int = sidCapacity)
        async throws(SpoolError) -> Int
    {
        do {
            return try await pool.write { db in
                try db.execute(sql: "DELETE FROM webhook_sids WHERE seenAt < ?", arguments: [nowMillis - retentionMillis])
                var deleted = db.changesCount
                try db.execute(
                    sql: "DELETE FROM webhook_sids WHERE sid IN (SELECT sid FROM webhook_sids ORDER BY seenAt DESC LIMIT -1 OFFSET ?)",
                    arguments: [capacity])
                deleted += db.changesCount
                return deleted
            }
        } catch {
            throw writeError(error)
        }
    }

    /// How many SIDs are recorded.
    public func sidCount() throws(SpoolError) -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM webhook_sids") ?? 0 }
    }
}
