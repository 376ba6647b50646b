import Glibc
import Synchronization

/// An exclusive lock on a spool folder for as long as the bridge runs (`flock` on
/// `spool.lock`). Two bridges on one spool would deliver each other's messages twice, and with
/// one client id they would knock each other off the broker; the second one stops instead,
/// before it touches the broker. The kernel releases the lock when the process ends, however
/// it ends (SIGKILL included), so a crash never leaves a stale lock behind.
public final class SpoolLock: Sendable {
    let descriptor: Int32
    private let released = Atomic<Bool>(false)

    /// `nil` when another process holds the lock.
    public init?(folder: String) throws(SpoolError) {
        let path = folder + "/spool.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SpoolError("cannot open \(path.debugDescription) to lock the spool: \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            close(descriptor)
            if reason == EWOULDBLOCK { return nil }
            throw SpoolError("cannot lock \(path.debugDescription): \(String(cString: strerror(reason)))")
        }
        self.descriptor = descriptor
    }

    /// Lets the next bridge take the spool (at the end of a graceful shutdown). Idempotent.
    public func release() {
        guard released.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        close(descriptor)
    }

    deinit { release() }
}
