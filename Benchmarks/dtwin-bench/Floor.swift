import AsyncHTTPClient
import DTwinContract
import DTwinMQTT
import DTwinSpool
import DTwinTestSupport
import DTwinUpstream
import Foundation
import Logging
import Synchronization

/// The floor of one message (issue 22): what the parts the bridge cannot do without cost alone,
/// as CPU µs per message, each measured in a process of its own (this benchmark started again
/// with `--floor-part`), so that nothing else's CPU is counted:
///
/// - `mqtt`: libmosquitto, through dtwin's wrapper, receiving QoS 1 messages into a handler on
///   its network thread that does nothing (the bridge's intake runs exactly there);
/// - `spool`: the spool's insert of a device message and its removal, committed in batches as
///   the bridge's spool maintenance does;
/// - `upstream`: one `apigw` exchange with the benchmark's receiver through the bridge's own
///   HTTP client and upstream (`APIGatewayUpstream`, its workers on the client's event loops),
///   with the bridge's default concurrency. The events are built before the clock starts;
/// - `roundTrip` (measured for `--devices 1` only, not part of the sum): the same exchanges one
///   at a time, as one device's lane sends them. Its rate is the ceiling of one device in order
///   on this machine: the bridge cannot deliver a device's messages faster than its own HTTP
///   client and the receiver answer them back to back with nothing else to do.
enum FloorPart: String, CaseIterable, Sendable {
    case mqtt, spool, upstream
    case roundTrip = "round-trip"
}

/// What a part measured: CPU µs per message, and (round trip) exchanges a second.
struct FloorResult: Sendable {
    var cpuMicroseconds: Double
    var rate: Double?
}

/// One part, measured in this (child) process.
struct FloorMeasurement {
    let part: FloorPart
    let messages: Int
    /// `mqtt`: the broker's port; `upstream`: the receiver's URL.
    let target: String
    let logger: Logger

    func run() async throws -> FloorResult {
        switch part {
        case .mqtt: return FloorResult(cpuMicroseconds: try await receiving())
        case .spool: return FloorResult(cpuMicroseconds: try await spooling())
        case .upstream: return try await delivering(concurrency: Self.concurrency)
        case .roundTrip: return try await delivering(concurrency: 1)
        }
    }

    /// User and system CPU of this process so far, in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The messages after the first are timed: the clock starts on the network thread when the
    /// first one arrives and stops when the last one has been handled.
    func receiving() async throws -> Double {
        guard let port = Int(target) else { throw TestSupportError("--floor-target: the broker's port") }
        let client = try MQTTClient(configuration: MQTTClientConfiguration(port: port, clientID: "bench-floor", cleanSession: true), logger: logger)
        let clock = Mutex<(count: Int, start: Double, end: Double)>((0, 0, 0))
        let total = messages
        client.handleMessages { _ in
            clock.withLock { clock in
                clock.count += 1
                if clock.count == 1 { clock.start = Self.cpuSeconds() }
                if clock.count == total { clock.end = Self.cpuSeconds() }
            }
        }
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        try await client.subscribe([DTwinBench.floorFilter])
        FileHandle.standardOutput.write(Data((DTwinBench.floorReady + "\n").utf8))
        guard await waitUntil(timeout: .seconds(120), interval: .milliseconds(5), { clock.withLock { $0.count >= total } }) else {
            throw TestSupportError("received \(clock.withLock(\.count)) of \(total) messages")
        }
        await client.close()
        let (_, start, end) = clock.withLock { $0 }
        return (end - start) / Double(total - 1) * 1e6
    }

    func spooling() async throws -> Double {
        let folder = try makeTemporaryFolder("dtwin-floor-spool")
        defer { try? FileManager.default.removeItem(at: folder) }
        let spool = try Spool(path: folder.appendingPathComponent("spool.sqlite").path, maxBytes: 256_000_000)
        defer { spool.close() }
        let batch = sampleMessages()
        // As on the bridge's network thread: the synchronous insert, then the removal noted.
        func store(_ message: DeviceMessage) throws {
            let seq = try spool.append(message)
            spool.remove(seq, message: message)
        }
        // The bridge's maintenance commits removals every 20 ms, about 200 messages at 10,000 a
        // second, and starts the WAL over when it is due.
        func pass(_ count: Int) async throws {
            for n in 0..<count {
                try store(batch[n % batch.count])
                guard n % 200 == 199 else { continue }
                if spool.walFrames >= Spool.walRestartFrames { try await spool.restartWAL() }
                _ = try await spool.commitRemovals()
            }
            _ = try await spool.commitRemovals()
        }
        try await pass(1_000)
        let start = Self.cpuSeconds()
        try await pass(messages)
        return (Self.cpuSeconds() - start) / Double(messages) * 1e6
    }

    /// `concurrency` workers deliver the events, each one exchange at a time.
    func delivering(concurrency: Int) async throws -> FloorResult {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = concurrency
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let upstream = try APIGatewayUpstream(url: target, post: false, timeout: .seconds(10), client: http)
        let events = sampleMessages().map(IoTEvent.init(message:))
        let logger = self.logger
        func pass(_ count: Int) async {
            let next = Ticket()
            let executors = upstream.workerExecutors
            await withTaskGroup(of: Void.self) { group in
                for index in 0..<concurrency {
                    let executor = executors.isEmpty ? nil : executors[index % executors.count]
                    group.addTask(executorPreference: executor) {
                        while true {
                            let n = next.take()
                            guard n < count else { return }
                            _ = await upstream.deliver(events[n % events.count], logger: logger)
                        }
                    }
                }
            }
        }
        await pass(1_000)
        let start = (cpu: Self.cpuSeconds(), wall: ContinuousClock.now)
        await pass(messages)
        let perMessage = (Self.cpuSeconds() - start.cpu) / Double(messages) * 1e6
        let rate = Double(messages) / (ContinuousClock.now - start.wall).seconds
        try await http.shutdown()
        return FloorResult(cpuMicroseconds: perMessage, rate: rate)
    }

    /// The bridge's default `upstream.concurrency`.
    static let concurrency = 32

    /// Device messages shaped like the benchmark's readings, 50 devices.
    func sampleMessages() -> [DeviceMessage] {
        var ids = MonotonicMessageIDs()
        return (0..<1_000).map { n in
            let device = DeviceName("dev-\(n % 50)")!
            return DeviceMessage(
                id: ids.next(millis: Timestamp.nowMillis()), device: device, topic: "dtwin/\(device)/up",
                payload: Array("sim-\(device) data \(n)".utf8), receivedAtMillis: Timestamp.nowMillis())
        }
    }
}

extension DTwinBench {
    /// What the floor's receiving part subscribes to, apart from the bridge's topics.
    static let floorFilter = "floor/+/up"
    static let floorReady = "floor-ready"
    static let floorResult = "floor-result "

    /// Measures each part of the floor in a child process (the round trip with one device only).
    func measureFloor(broker: MosquittoProcess, logger: Logger) async throws -> [FloorPart: FloorResult] {
        let receiver = try await HTTPSink.start { _ in }
        defer { Task { await receiver.stop() } }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
        var results: [FloorPart: FloorResult] = [:]
        for part in FloorPart.allCases where part != .roundTrip || devices == 1 {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-floor-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: output) }
            let target = part == .mqtt ? "\(broker.port)" : receiver.url
            let child = try ChildProcess(
                executable: executable, arguments: ["--floor-part", part.rawValue, "--floor-target", target, "--messages", "\(messages)"],
                outputFile: output.path)
            func text() -> String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
            if part == .mqtt {
                guard await waitUntil(timeout: .seconds(30), { text().contains(Self.floorReady) }) else {
                    throw TestSupportError("the floor's receiver did not start: \(text())")
                }
                let publisher = try await connectedClient(broker: broker, id: "bench-floor-pub", logger: logger)
                try await publishBurst(publisher, count: messages, offset: 0, prefix: "floor")
                await publisher.close()
            }
            guard await child.exited(within: .seconds(300)), child.exitCode == 0,
                let line = text().split(separator: "\n").first(where: { $0.hasPrefix(Self.floorResult) }),
                case let values = line.dropFirst(Self.floorResult.count).split(separator: " ").compactMap({ Double($0) }),
                let cpu = values.first
            else { throw TestSupportError("the floor's \(part.rawValue) part failed: \(text().suffix(1000))") }
            results[part] = FloorResult(cpuMicroseconds: cpu, rate: values.dropFirst().first)
        }
        return results
    }
}

/// Hands out 0, 1, 2, ... to concurrent workers.
final class Ticket: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}
