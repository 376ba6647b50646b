import Glibc

/// Wakes the network thread from `poll` when another thread has queued a packet (a publish, a
/// subscribe, a disconnect), so it is written at once rather than at the next poll timeout.
/// (libmosquitto's `mosquitto_loop` has an internal socket pair for this, which is not public.)
///
/// Two non-blocking descriptors owned here, closed in `deinit`; writes and reads of one byte
/// are safe from any thread, so it is `Sendable` with only `let` properties.
final class WakeupPipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws(MQTTError) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw MQTTError(.other, "could not create the network thread's wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        readEnd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func wake() {
        var byte: UInt8 = 1
        // A full pipe already holds a wake-up: EAGAIN is fine.
        _ = write(writeEnd, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &buffer, buffer.count) > 0 {}
    }
}
