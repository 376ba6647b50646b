import Foundation

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).
/// There is a short window before the caller binds it; servers started with it retry on a clash.
public func freeLoopbackPort() throws -> Int { try freeLoopbackPorts(1)[0] }

/// `count` different free ports: each stays bound until all are chosen, so the kernel cannot
/// hand out the same one twice (two calls of ``freeLoopbackPort()`` can).
public func freeLoopbackPorts(_ count: Int) throws -> [Int] {
    var sockets: [Int32] = []
    defer { for fd in sockets { close(fd) } }
    var ports: [Int] = []
    for _ in 0..<count {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        sockets.append(fd)
        guard withLoopbackAddress(port: 0, { bind(fd, $0, $1) }) == 0 else { throw TestSupportError("bind() failed: errno \(errno)") }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw TestSupportError("getsockname() failed: errno \(errno)") }
        ports.append(Int(UInt16(bigEndian: address.sin_port)))
    }
    return ports
}

/// Holds 127.0.0.1:`port` bound but not listening while a test's server is down on purpose
/// (``MosquittoProcess/stop()``): clients are refused as by a closed port, and the kernel hands
/// the port to nobody else meanwhile (a parallel test's ``freeLoopbackPort()`` once got it, and
/// the restarted broker exited with "address in use"). ``release()`` just before the server
/// starts again.
public final class PortReservation: @unchecked Sendable {
    // @unchecked: released once, by the test that holds it.
    private var fd: Int32

    public init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket() failed: errno \(errno)") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        guard withLoopbackAddress(port: port, { bind(fd, $0, $1) }) == 0 else {
            close(fd)
            throw TestSupportError("cannot hold port \(port): errno \(errno)")
        }
    }

    public func release() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit { release() }
}

/// `true` when something accepts TCP connections on 127.0.0.1:`port`.
public func isListening(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return withLoopbackAddress(port: port) { connect(fd, $0, $1) } == 0
}

public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every `interval` until it holds or `timeout` passes; returns whether it held.
/// Tests wait on conditions with a deadline, never for a fixed time.
@discardableResult
public func waitUntil(
    timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

/// Runs `call` (bind, connect) with 127.0.0.1:`port` as a `sockaddr`; returns its result.
func withLoopbackAddress(port: Int, _ call: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}
