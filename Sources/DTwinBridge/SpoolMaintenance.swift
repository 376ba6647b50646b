import DTwinSpool
import Logging
import ServiceLifecycle

/// Deletes delivered messages from the spool in batches, every 20 ms: a removal is only noted
/// when a message is delivered (``Spool/remove(_:message:)``), and one transaction for many
/// is far cheaper than one each. A message delivered again after a crash carries the same
/// `MessageId`, so there is no hurry. The bridge commits what is left when it closes the spool.
public struct SpoolMaintenance: Service {
    static let interval = Duration.milliseconds(20)

    let spool: Spool
    let logger: Logger

    public init(spool: Spool, logger: Logger) {
        self.spool = spool
        self.logger = logger
    }

    public func run() async throws {
        await periodically(every: Self.interval, state: 0) { failures in
            do throws(SpoolError) {
                try await spool.commitRemovals()
                failures = 0
            } catch {
                // The first failure, then every 10 s: loud, not a flood.
                if failures % 500 == 0 {
                    logger.error("cannot remove delivered messages from the spool", metadata: ["error": "\(error)"])
                }
                failures += 1
            }
        }
    }
}
