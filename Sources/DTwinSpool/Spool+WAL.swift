import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// The spool's WAL, kept out of the MQTT thread's way.
///
/// SQLite's own checkpoint runs in the connection whose commit takes the WAL past 1,000 pages:
/// here that is usually the MQTT thread's insert, while the broker waits for its PUBACK. It
/// costs three fdatasyncs, of the WAL (1-4 MB: ``Spool/pageSize``), of the database file and of the WAL's new header:
/// 5-8 ms on this disk, during which every device message waits. So the writer's commits only
/// note the WAL's length (``WALWatch``), and ``SpoolMaintenance`` starts the WAL over from its
/// own connection (``restartWAL()``): a passive checkpoint copies the bulk while the writer goes
/// on, then a RESTART checkpoint copies the few pages written meanwhile, holding the writer only
/// for two small fdatasyncs. A passive checkpoint alone never lets SQLite start the WAL over
/// under a steady stream (it must catch up with the writer first), and a WAL that only grows
/// makes every insert dearer: SQLite's WAL index probes every frame of the insert's page.
extension Spool {
    /// The WAL's length, in pages, at which ``SpoolMaintenance`` starts it over: SQLite's own
    /// default, so that an insert costs what it did when SQLite checkpointed by itself.
    public static let walRestartFrames = 1_000

    /// The WAL's length at which the writer checkpoints by itself after all, as SQLite would:
    /// only when the maintenance has not kept up (a stalled process, a reader holding the WAL).
    public static let writerCheckpointFrames = 4 * walRestartFrames

    /// The WAL's length, in pages, after the writer's last commit.
    public var walFrames: Int { walWatch.frames.load(ordering: .relaxed) }

    /// Starts the WAL over (see the extension's comment); returns false when a reader holds the
    /// WAL or the writer's lock was not to be had within a few milliseconds, and the WAL goes on
    /// growing until the next try.
    @discardableResult
    public func restartWAL() async throws(SpoolError) -> Bool {
        do {
            let restarted = try await checkpointer.writeWithoutTransaction { db in
                do {
                    _ = try db.checkpoint(.passive)
                    _ = try db.checkpoint(.restart)
                    return true
                } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                    // Another checkpoint was running (the writer's, past its limit), or see above.
                    return false
                }
            }
            // The writer's next commit says how long the new WAL is; until then, nothing is due.
            if restarted { walWatch.frames.store(0, ordering: .relaxed) }
            return restarted
        } catch {
            throw SpoolError("cannot start the spool's WAL over (\(path.debugDescription)): \(SpoolError.describe(error))")
        }
    }

    /// A passive checkpoint: with `synchronous=NORMAL` the WAL reaches the disk at checkpoints
    /// only, and a trickle of readings could wait hours for the WAL to reach
    /// ``walRestartFrames``, exposed to a power cut (past the kernel's own write-back) although
    /// acknowledged. ``SpoolMaintenance`` runs this every second, and the bridge as it stops.
    /// With nothing new in the WAL it reads the WAL's header and returns, without writing or
    /// syncing anything. Returns the WAL's frames and how many of them are in the database file now.
    @discardableResult
    public func checkpoint() async throws(SpoolError) -> (walFrames: Int, checkpointed: Int) {
        do {
            let counts = try await checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            return (counts.walFrameCount, counts.checkpointedFrameCount)
        } catch {
            throw SpoolError("cannot checkpoint the spool's WAL into \(path.debugDescription): \(SpoolError.describe(error))")
        }
    }

    /// Installs the WAL hook on `db`, in place of SQLite's checkpoint every 1,000 pages.
    static func watchWAL(of db: Database, into watch: WALWatch) {
        sqlite3_wal_hook(db.sqliteConnection, spoolWALHook, Unmanaged.passUnretained(watch).toOpaque())
    }

    /// A writer waiting for the lock: in steps of 100 µs for the first 10 ms, since a WAL restart
    /// holds it for 2-3 ms and SQLite's own steps (1, 2, 5, 10 ms…) would make that 8; then in
    /// steps of 1 ms, for about 5 s in all.
    static let writerBusyWait: Database.BusyCallback = { tries in
        usleep(tries < 100 ? 100 : 1_000)
        return tries < 5_100
    }

    /// ``restartWAL()`` waiting for the writer's lock, or, holding it, for readers to leave the
    /// WAL: about 5 ms, then it gives up until the next try rather than hold device messages up.
    static let restartBusyWait: Database.BusyCallback = { tries in
        usleep(100)
        return tries < 50
    }
}

/// The WAL's length after the last commit, written by the WAL hook on the writer's thread and
/// read by the maintenance.
final class WALWatch: Sendable {
    let frames = Atomic<Int>(0)
}

/// SQLite calls this after each commit, on the committing thread, with the WAL's length. The
/// `WALWatch` it is given outlives every connection: the pool's configuration holds it.
private func spoolWALHook(
    context: UnsafeMutableRawPointer?, db: OpaquePointer?, schema: UnsafePointer<CChar>?, frames: Int32
) -> Int32 {
    guard let context else { return SQLITE_OK }
    let watch = Unmanaged<WALWatch>.fromOpaque(context).takeUnretainedValue()
    watch.frames.store(Int(frames), ordering: .relaxed)
    if Int(frames) >= Spool.writerCheckpointFrames {
        // What SQLite's own hook does; a failure leaves the WAL for the next commit to try.
        _ = sqlite3_wal_checkpoint(db, schema)
    }
    return SQLITE_OK
}
