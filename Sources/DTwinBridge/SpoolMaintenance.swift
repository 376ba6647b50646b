import DTwinContract
import DTwinSpool
import Logging
import ServiceLifecycle

/// Deletes delivered messages from the spool in batches, every 20 ms: a removal is only noted
/// when a message is delivered (``Spool/remove(_:message:)``), and one transaction for many
/// is far cheaper than one each. A message delivered again after a crash carries the same
/// `MessageId`, so there is no hurry. The bridge commits what is left when it closes the spool.
/// Every second it checkpoints the spool's WAL (``Spool/checkpoint()``): that second bounds what
/// a power cut can take with `spool.sync: normal`, where the WAL reaches the disk at checkpoints
/// only; with nothing new in the WAL a checkpoint writes nothing. At any turn that finds the WAL
/// at ``Spool/walRestartFrames`` it starts the WAL over (``Spool/restartWAL()``), so that SQLite's
/// own checkpoint never runs in the MQTT thread. At start and then every 10 minutes it prunes the
/// webhook SIDs past their retention. Removals that wait for a gate (``Spool/removalsWait(for:)``:
/// the `local` upstream's twin table synced first) are committed once a second, after the checkpoint.
public struct SpoolMaintenance: Service {
    static let interval = Duration.milliseconds(20)

    let spool: Spool
    let logger: Logger

    public init(spool: Spool, logger: Logger) {
        self.spool = spool
        self.logger = logger
    }

    /// Turns of ``interval`` between two prunings of the webhook SIDs (10 minutes).
    static let turnsPerPruning = 30_000

    /// Turns of ``interval`` between two checkpoints (1 s).
    static let turnsPerCheckpoint = 50

    /// What one turn leaves for the next.
    struct Turns: Sendable {
        var number = 0
        var failures = 0
        var checkpointFailures = 0
    }

    public func run() async throws {
        await periodically(every: Self.interval, state: Turns()) { turns in await turn(&turns) }
    }

    /// One turn: prune, checkpoint or restart the WAL (when due), commit the removals.
    func turn(_ turns: inout Turns) async {
        if turns.number % Self.turnsPerPruning == 0 {
            do throws(SpoolError) { try await spool.pruneSids(nowMillis: Timestamp.nowMillis()) } catch {
                logger.error("cannot prune old webhook SIDs from the spool", metadata: ["error": "\(error)"])
            }
        }
        // A restart checkpoints too. Refused for now (a reader in the WAL), it is tried again at
        // the next turn.
        let restart = spool.walFrames >= Spool.walRestartFrames
        let checkpointTurn = turns.number % Self.turnsPerCheckpoint == 0
        if restart || checkpointTurn {
            await attempt("cannot checkpoint the spool", loggingOneIn: 100, failures: &turns.checkpointFailures) {
                () async throws(SpoolError) in
                if restart { try await spool.restartWAL() } else { try await spool.checkpoint() }
            }
        }
        turns.number += 1
        // Removals that wait for a gate (the local twin table's fsyncs) go once a second, not
        // every turn: two fsyncs a second instead of a hundred (measured: 5% of local's
        // throughput at every turn).
        let gated = spool.removalsAreGated
        guard !gated || checkpointTurn else { return }
        // Every 10 s while it keeps failing: one failure in 500 turns, or in 10 seconds.
        let loggingOneIn = gated ? 10 : 500
        await attempt("cannot remove delivered messages from the spool", loggingOneIn: loggingOneIn, failures: &turns.failures) {
            () async throws(SpoolError) in try await spool.commitRemovals()
        }
    }

    /// Runs `work`, and logs its first failure and then one in `loggingOneIn` in a row: loud,
    /// not a flood.
    private func attempt(
        _ failing: Logger.Message, loggingOneIn: Int, failures: inout Int, _ work: () async throws(SpoolError) -> Void
    ) async {
        do throws(SpoolError) {
            try await work()
            failures = 0
        } catch {
            if failures % loggingOneIn == 0 { logger.error(failing, metadata: ["error": "\(error)"]) }
            failures += 1
        }
    }
}
