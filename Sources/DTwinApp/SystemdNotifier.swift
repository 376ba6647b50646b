import DTwinBridge
import DTwinHTTP
import Foundation
import Logging
import ServiceLifecycle

/// Tells systemd how the bridge is (`Type=notify` in packaging/dtwin.service), over the datagram
/// socket in `NOTIFY_SOCKET`, as `sd_notify(3)` does: `READY=1` once the HTTP server listens
/// and the bridge runs (a broker that is not up yet is waited for, and said in `STATUS=`, but
/// does not hold the start back), `WATCHDOG=1` at half of `WATCHDOG_USEC` while the process
/// answers, and `STOPPING=1` when it begins to stop. Without `NOTIFY_SOCKET` (not under systemd)
/// it does nothing.
struct SystemdNotifier: Service {
    let socketPath: String
    let watchdogInterval: Duration?
    let httpAddress: HTTPServer.Address
    let bridge: BridgeService
    let logger: Logger

    /// `nil` when not started by systemd with `Type=notify`.
    init?(environment: [String: String], httpAddress: HTTPServer.Address, bridge: BridgeService, logger: Logger) {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        socketPath = path
        watchdogInterval = environment["WATCHDOG_USEC"].flatMap(Int64.init).map { .microseconds($0 / 2) }
        self.httpAddress = httpAddress
        self.bridge = bridge
        self.logger = logger
    }

    func run() async throws {
        guard await httpAddress.port(timeout: .seconds(60)) != nil else { return }
        send("READY=1\nSTATUS=\(status)")
        let interval = watchdogInterval ?? .seconds(10)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Cut short by the shutdown: the services after this one wait until it returns.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: min(interval, .seconds(10))) }
            if Task.isShuttingDownGracefully || Task.isCancelled { break }
            var message = "STATUS=\(status)"
            if watchdogInterval != nil { message += "\nWATCHDOG=1" }
            send(message)
        }
        send("STOPPING=1")
    }

    var status: String {
        let health = bridge.liveHealth
        return health.brokerConnected
            ? "running: \(health.received) messages taken in, \(health.spoolMessages) in the spool"
            : "waiting for the broker: \(health.problems.first ?? "not connected")"
    }

    /// One datagram to the socket; a path starting with `@` is in the abstract namespace.
    func send(_ message: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.enumerated() { buffer[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), address, length) }
            }
        }
        if sent < 0 { logger.warning("systemd notification not sent", metadata: ["socket": "\(socketPath)", "errno": "\(errno)"]) }
    }
}
