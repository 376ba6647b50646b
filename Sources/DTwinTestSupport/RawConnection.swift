import Foundation

/// A plain TCP connection to 127.0.0.1, for tests that must misbehave the way no HTTP client
/// library will: send half a request, stay silent, drip bytes.
public final class RawConnection: @unchecked Sendable {
    // @unchecked: one test task uses a connection at a time.
    let fd: Int32

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        guard withLoopbackAddress(port: port, { connect(fd, $0, $1) }) == 0 else {
            close(fd)
            throw TestSupportError("connect() to 127.0.0.1:\(port) failed: errno \(errno)")
        }
    }

    deinit { close(fd) }

    public func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes the connection, or `nil` if it is still
    /// open after `timeout`.
    public func readUntilClosed(timeout: Duration) -> String? {
        let (text, closed) = read(timeout: timeout)
        return closed ? text : nil
    }

    /// What the server sends within `timeout` (less if it closes the connection first, or after
    /// 64 KiB), and whether it closed it.
    public func read(timeout: Duration) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline && received.count < 65_536 {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline - ContinuousClock.now
            let millis = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&poller, 1, millis) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received += buffer.prefix(count)
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

/// How many files the process `pid` has open (`/proc/<pid>/fd`).
public func openFileCount(pid: pid_t) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}
