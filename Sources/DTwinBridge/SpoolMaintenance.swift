import DTwinContract
import DTwinSpool
import Logging
import ServiceLifecycle

/// Deletes delivered messages from the spool in batches, every 20 ms: a removal is only noted
/// when a message is delivered (``Spool/remove(_:message:)``), and one transaction for many
/// is far cheaper than one each. A message delivered again after a crash carries the same
/// `MessageId`, so there is no hurry. The bridge commits what is left when it closes the spool.
/// At start and then every 10 minutes it also prunes the webhook SIDs past their retention.
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

    public func run() async throws {
        await periodically(every: Self.interval, state: (failures: 0, turn: 0)) { state in
            if state.turn % Self.turnsPerPruning == 0 {
                do throws(SpoolError) { try await spool.pruneSids(nowMillis: Timestamp.nowMillis()) } catch {
                    logger.error("cannot prune old webhook SIDs from the spool", metadata: ["error": "\(error)"])
                }
            }
            state.turn += 1
            do throws(SpoolError) {
                try await spool.commitRemovals()
                state.failures = 0
            } catch {
                // The first failure, then every 10 s: loud, not a flood.
                if state.failures % 500 == 0 {
                    logger.error("cannot remove delivered messages from the spool", metadata: ["error": "\(error)"])
                }
                state.failures += 1
            }
        }
    }
}
