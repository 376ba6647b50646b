import ArgumentParser
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging
import Synchronization

/// End-to-end benchmark of the bridge, against the raw broker, on loopback only.
///
/// 1. Raw broker: the same publisher into a plain subscriber (no bridge).
/// 2. Bridge throughput: a burst from many simulated devices through mosquitto and the real
///    `dtwin bridge` (release build) into a local HTTP receiver (`--upstream apigw`), or into
///    its own SQLite twin table, keeping every device's twin (`--upstream local`).
/// 3. Latency at a fixed rate: device publish -> upstream arrival, p50/p99 (apigw only: the
///    local upstream has no receiver to time).
/// Before 2, the floor (``FloorPart``): the CPU per message of the parts the bridge cannot do
/// without, each alone, and after 2 the bridge's own CPU per message as a multiple of it.
/// With `--instances 1,2,3`, steps 2 and 3 run once for each count: that many bridges in one
/// shared-subscription group (README: "Several instances"), each with its own spool.
/// Prints figures; asserts nothing (targets are judged by people, not by the test suite).
@main
struct DTwinBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtwin-bench",
        abstract: "Measure the bridge end to end on loopback: throughput, latency, peak RSS.")

    @Option(help: "Messages in each burst.")
    var messages = 50_000

    @Option(help: "Simulated devices (topics dtwin/dev-N/up).")
    var devices = 50

    @Option(help: "Messages per second for the latency phase.")
    var rate = 1000

    @Option(help: "Seconds of the latency phase.")
    var seconds = 10

    @Option(help: "Publisher: messages queued per acknowledged chunk.")
    var chunk = 500

    @Option(help: "The bridge's upstream.concurrency (default: the bridge's own default).")
    var concurrency: Int?

    @Flag(inversion: .prefixedNo, help: "Run the bridge with its durable spool (the default) or without it.")
    var spool = true

    @Option(help: "apigw (an HTTP receiver stands in for API Gateway) or local (the bridge's own SQLite twin table, with a twin per device).")
    var upstream = "apigw"

    @Option(help: "Dashboards open during the run: each a live stream (GET /api/events) read as a browser would.")
    var dashboards = 0

    @Option(help: "The dtwin executable (default: the one beside this benchmark).")
    var bridge: String?

    @Option(
        help: ArgumentHelp(
            "Bridge instances, as a list: 1,2,3 measures one, two and three bridges in one shared-subscription group, one after the other. Default: one bridge alone.",
            valueName: "N,N,..."))
    var instances: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Measure the floor first: libmosquitto receiving, the spool's insert and delete, one upstream exchange, each alone.")
    var floor = true

    @Option(help: "Messages counted under valgrind's callgrind for the bridge's instructions per message (0: skip).")
    var callgrind = 2000

    @Option(help: "Keep the callgrind profile of that stretch here (read it with callgrind_annotate FILE).")
    var callgrindOut: String?

    /// Set when this process is a child measuring one part of the floor.
    @Option(help: .hidden)
    var floorPart: String?

    @Option(help: .hidden)
    var floorTarget: String?

    /// The instance counts to measure; `nil`: one bridge, not in a group.
    var instanceCounts: [Int]? { instances.map { $0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } } }

    func validate() throws {
        guard ["apigw", "local"].contains(upstream) else { throw ValidationError("--upstream is apigw or local") }
        if let counts = instanceCounts, counts.isEmpty || counts.contains(where: { !(1...8).contains($0) }) {
            throw ValidationError("--instances is a list of counts from 1 to 8, like 1,2,3")
        }
    }

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        if let floorPart {
            guard let part = FloorPart(rawValue: floorPart) else { throw ValidationError("--floor-part: \(FloorPart.allCases)") }
            let result = try await FloorMeasurement(part: part, messages: messages, target: floorTarget ?? "", logger: logger).run()
            print("\(Self.floorResult)\(result.cpuMicroseconds)\(result.rate.map { " \($0)" } ?? "")")
            return
        }
        // TCP_NODELAY on the broker's sockets, as in broker-config: without it, Nagle's algorithm
        // holds small PUBACKs back and every acknowledged publish waits milliseconds.
        let broker = try MosquittoProcess(extraConfiguration: ["set_tcp_nodelay true"])
        defer { broker.stop() }
        let executable =
            bridge
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("dtwin").path
        print("dtwin-bench: \(messages) messages from \(devices) devices; latency at \(rate) msg/s for \(seconds) s")
        print("broker: mosquitto on 127.0.0.1:\(broker.port); bridge: \(executable), upstream \(upstream), spool \(spool ? "on" : "off")")

        // 1. Raw broker rate: publisher -> mosquitto -> plain subscriber.
        let raw = try await rawBrokerRate(broker: broker, logger: logger)
        print(String(format: "raw broker (QoS 1, same publisher -> plain subscriber): %.0f msg/s", raw))
        if let reference = try await mosquittoPubRate(broker: broker, logger: logger) {
            print(String(format: "raw broker with mosquitto_pub -l (for comparison only): %.0f msg/s", reference))
        }
        if upstream == "apigw" {
            let raw = try await rawLatency(broker: broker, logger: logger)
            print("raw broker latency at \(rate) msg/s (same publisher -> plain subscriber, \(raw.count) samples): \(raw.text)")
        }

        var floorSum: Double?
        var roundTripRate: Double?
        if floor {
            let parts = try await measureFloor(broker: broker, logger: logger)
            let cpu = { (part: FloorPart) in parts[part]?.cpuMicroseconds ?? .nan }
            let sum = cpu(.mqtt) + cpu(.spool) + cpu(.upstream)
            floorSum = sum
            print(
                String(
                    format:
                        "floor (CPU per message, each part alone): libmosquitto receive %.1f µs + spool insert/delete %.1f µs + upstream exchange %.1f µs = %.1f µs",
                    cpu(.mqtt), cpu(.spool), cpu(.upstream), sum))
            if let roundTrip = parts[.roundTrip], let rate = roundTrip.rate {
                roundTripRate = rate
                print(
                    String(
                        format:
                            "one device's ceiling (upstream exchanges one at a time, same client and receiver, nothing else): %.0f exchanges/s, %.1f µs CPU each",
                        rate, roundTrip.cpuMicroseconds))
            }
        }

        // 2 and 3. Through the bridge: alone, or in groups of each size asked for.
        let receiver = try await HTTPSink.start { query in Self.latencies.record(query: query) }
        defer { Task { await receiver.stop() } }
        for count in instanceCounts ?? [1] {
            if instanceCounts != nil {
                print("")
                print("--- \(count) instance\(count == 1 ? "" : "s") in one shared-subscription group ---")
            }
            try await measureBridges(
                count: count, grouped: instanceCounts != nil, rawRate: raw, floor: floorSum, roundTripRate: roundTripRate, broker: broker,
                receiver: receiver, executable: executable, logger: logger)
        }
        guard callgrind > 0 else { return }
        guard FileManager.default.isExecutableFile(atPath: Self.valgrind) else {
            return print("instructions per message: not measured (no \(Self.valgrind); Debian: apt-get install valgrind)")
        }
        let instructions = try await measureInstructions(
            count: callgrind, broker: broker, receiver: receiver, executable: executable, logger: logger)
        let twins = instructions.twinWrites.map { ", each with its twin write (\($0) twin writes), as for devices that send every few seconds" } ?? ""
        print(
            String(
                format: "instructions per message (callgrind, the bridge alone, %@, %d messages after a warm-up%@): %.0f", upstream,
                instructions.messages, twins, instructions.perMessage))
    }

    /// The receiver's latency samples (one receiver serves every run).
    static let latencies = LatencyRecorder()

    /// Runs `count` bridges (`grouped`: as instances of one shared-subscription group), measures
    /// a burst and a steady rate through them, prints the figures and stops them.
    func measureBridges(
        count: Int, grouped: Bool, rawRate: Double, floor: Double?, roundTripRate: Double?, broker: MosquittoProcess, receiver: HTTPSink,
        executable: String, logger: Logger
    ) async throws {
        let latencies = Self.latencies
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // A group of its own for each run: the sessions of an earlier run's instances, still
        // subscribed while away, would otherwise take their share of this one's messages.
        let group = "bench\(count)"
        let names = (1...count).map { grouped ? "b\($0)" : "" }
        let status = try await MessageCollector(port: broker.port, filters: [grouped ? "dtwin/bridge/status/+" : "dtwin/bridge/status"])
        var bridges: [(process: ChildProcess, httpPort: Int)] = []
        for name in names {
            let httpPort = try freeLoopbackPort()
            var environment = bridgeEnvironment(
                broker: broker, receiver: receiver, directory: directory, clientId: "bench-bridge", httpPort: httpPort)
            if grouped { environment.merge(["DTWIN_INSTANCE": name, "DTWIN_SHAREDGROUP": group]) { $1 } }
            let process = try ChildProcess(
                executable: executable, arguments: ["bridge"],
                environment: ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("DTWIN_") }.merging(environment) { $1 },
                outputFile: directory.appendingPathComponent("bridge\(name).log").path)
            bridges.append((process, httpPort))
        }
        defer { for bridge in bridges where bridge.process.isRunning { bridge.process.signal(SIGTERM) } }
        /// Stops the bridges, then ends their persistent sessions, so that no later run's
        /// messages are queued for them.
        func stopBridges() async {
            for bridge in bridges { bridge.process.signal(SIGTERM) }
            for bridge in bridges { _ = await bridge.process.exited(within: .seconds(15)) }
            for id in names.map({ grouped ? "bench-bridge-\($0)" : "bench-bridge" }) {
                guard
                    let client = try? MQTTClient(
                        configuration: MQTTClientConfiguration(port: broker.port, clientID: id, cleanSession: true), logger: logger)
                else { continue }
                client.start()
                try? await client.waitUntilConnected(timeout: .seconds(5))
                await client.close()
            }
        }
        let online = await status.waitFor(timeout: .seconds(30)) { messages in
            Set(messages.filter { $0.payload == Array("online".utf8) }.map(\.topic)).count >= count
        }
        await status.close()
        guard online else { throw TestSupportError("the bridges did not come online; see their logs") }
        // Delivered so far: what the receiver got, or (local) the bridges' own counters.
        let local = upstream == "local"
        let ports = bridges.map(\.httpPort)
        let delivered = { @Sendable () -> Int in local ? ports.reduce(0) { $0 + Self.deliveredCount(httpPort: $1) } : receiver.requestCount }
        let poll = Duration.milliseconds(local ? 20 : 2)
        let pids = bridges.map(\.process.pid)
        let bridgeCPU = { pids.reduce(0) { $0 + cpuSeconds(pid: $1) } }
        let publisher = try await connectedClient(broker: broker, id: "bench-devices", logger: logger)
        let streams = try (0..<dashboards).map { _ in try DashboardStream(port: bridges[0].httpPort, token: Self.apiToken) }
        defer { for stream in streams { stream.stop() } }
        if dashboards > 0 { print("dashboards: \(dashboards) live streams open (GET /api/events)") }

        // Warm-up: connections, caches.
        let warmUpBase = delivered()
        try await publishBurst(publisher, count: 2000, offset: 0)
        _ = await waitUntil(timeout: .seconds(60)) { delivered() >= warmUpBase + 2000 }
        // What the twins cost: how often they are written (local only).
        let twinWrites = { @Sendable () -> Int in ports.reduce(0) { $0 + Self.metric("dtwin_twin_writes_total", httpPort: $1) } }
        let twinWritesBefore = local ? twinWrites() : 0

        let before = delivered()
        let cpuBefore = (bridge: bridgeCPU(), broker: cpuSeconds(pid: broker.pid), bench: cpuSeconds(pid: getpid()))
        let start = ContinuousClock.now
        try await publishBurst(publisher, count: messages, offset: 2000)
        // Every message acknowledged, so in the bridge's spool: the rest of the time is delivery alone.
        let taken = ContinuousClock.now - start
        let deliveredWhenTaken = delivered() - before
        let done = await waitUntil(timeout: .seconds(300), interval: poll) { delivered() >= before + messages }
        let elapsed = ContinuousClock.now - start
        let received = delivered() - before
        let throughput = Double(received) / elapsed.seconds
        print(
            String(
                format: "bridge burst (%@, %d devices, QoS 1): %.0f msg/s (%d delivered in %.2f s, all taken in by %.2f s)%@",
                upstream, devices, throughput, received, elapsed.seconds, taken.seconds, done ? "" : " INCOMPLETE"))
        // After the last acknowledgement the bridge has nothing left to do but deliver.
        if received > deliveredWhenTaken, elapsed > taken {
            print(
                String(
                    format: "delivery alone (after all was taken in): %.0f msg/s (%d delivered by then)",
                    Double(received - deliveredWhenTaken) / (elapsed - taken).seconds, deliveredWhenTaken))
        }
        print(String(format: "bridge / raw broker: %.0f%%", throughput / rawRate * 100))
        if let roundTripRate, !local {
            print(String(format: "bridge / one device's ceiling: %.0f%%", throughput / roundTripRate * 100))
        }
        let burstCPU = bridgeCPU() - cpuBefore.bridge
        print(
            String(
                format: "CPU during the burst (2 cores = %.1f s available): bridge%@ %.2f s (%.0f µs/msg), broker %.2f s, publisher+receiver %.2f s",
                elapsed.seconds * 2, count > 1 ? "s together" : "", burstCPU, burstCPU / Double(messages) * 1e6,
                cpuSeconds(pid: broker.pid) - cpuBefore.broker, cpuSeconds(pid: getpid()) - cpuBefore.bench))
        if let floor {
            // The floor's upstream part is an apigw exchange: the local upstream's store is another thing.
            let perMessage = burstCPU / Double(messages) * 1e6
            print(
                local
                    ? "bridge / floor: not compared (the floor's upstream part is an apigw exchange; this run stores locally)"
                    : String(format: "bridge / floor: %.1f× (%.0f µs per message against a floor of %.1f µs)", perMessage / floor, perMessage, floor))
        }

        if local {
            print("twins: \(twinWrites() - twinWritesBefore) twin writes during the burst (each device's twin at most 4 times a second)")
        }
        let rss = { pids.map { peakRSS(pid: $0) }.joined(separator: ", ") }
        guard !local else {
            print("latency: not measured with --upstream local (no receiver to time)")
            print("bridge peak RSS (VmHWM): \(rss())")
            await publisher.close()
            await stopBridges()
            return
        }

        // 3. Latency at a steady rate.
        latencies.start()
        let steadyCPU = bridgeCPU()
        let pushesBefore = streams.reduce(0) { $0 + $1.pushes }
        let latencyBase = receiver.requestCount
        let phaseStart = ContinuousClock.now
        try await publishSteadily(publisher)
        _ = await waitUntil(timeout: .seconds(60)) { receiver.requestCount >= latencyBase + rate * seconds }
        latencies.stop()
        let summary = latencies.summary
        print("latency at \(rate) msg/s (device publish -> upstream arrival, \(summary.count) samples): \(summary.text)")
        let steadySeconds = (ContinuousClock.now - phaseStart).seconds
        print(
            String(
                format: "bridge%@ CPU at %d msg/s from %d devices: %.1f%% of one core%@", count > 1 ? "s'" : "", rate, devices,
                (bridgeCPU() - steadyCPU) / steadySeconds * 100,
                dashboards > 0
                    ? String(
                        format: ", %d dashboards got %.1f pushes a second each", dashboards,
                        Double(streams.reduce(0) { $0 + $1.pushes } - pushesBefore) / steadySeconds / Double(dashboards)) : ""))
        print("bridge peak RSS (VmHWM): \(rss())")
        await publisher.close()
        await stopBridges()
    }

    static let apiToken = "bench-token"

    /// A benchmarked bridge's settings: its store and spool in `directory`, this run's upstream.
    func bridgeEnvironment(broker: MosquittoProcess, receiver: HTTPSink, directory: URL, clientId: String, httpPort: Int) -> [String: String] {
        [
            "DTWIN_BROKER": broker.url, "DTWIN_UPSTREAM_MODE": upstream, "DTWIN_UPSTREAM_URL": receiver.url,
            "DTWIN_STORE_PATH": directory.appendingPathComponent("twin.sqlite").path, "DTWIN_LOGLEVEL": "warning",
            "DTWIN_SPOOL_PATH": directory.appendingPathComponent("spool").path, "DTWIN_SPOOL_ENABLED": "\(spool)",
            "DTWIN_CLIENTID": clientId, "DTWIN_HTTP_PORT": "\(httpPort)", "DTWIN_API_TOKEN": Self.apiToken,
        ].merging(concurrency.map { ["DTWIN_UPSTREAM_CONCURRENCY": "\($0)"] } ?? [:]) { $1 }
    }

    /// `dtwin_messages_delivered_total` from the bridge's `/metrics` (all upstreams summed).
    static func deliveredCount(httpPort: Int) -> Int { metric("dtwin_messages_delivered_total", httpPort: httpPort) }

    /// A counter from the bridge's `/metrics`, summed over its labels (0 when it cannot be read).
    static func metric(_ name: String, httpPort: Int) -> Int {
        guard let connection = try? RawConnection(port: httpPort) else { return 0 }
        connection.send("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        let text = connection.readUntilClosed(timeout: .seconds(5)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0) { $0 + Int($1) }
    }

    /// `onMessage`: received messages go to it on the client's network thread, instead of to
    /// the client's stream.
    func connectedClient(
        broker: MosquittoProcess, id: String, logger: Logger, onMessage: MQTTClient.MessageHandler? = nil
    ) async throws -> MQTTClient {
        var configuration = MQTTClientConfiguration(port: broker.port, clientID: id, cleanSession: true)
        configuration.maxInflight = 1000  // above the publish window: the window is the limit
        let client = try MQTTClient(configuration: configuration, logger: logger)
        if let onMessage { client.handleMessages(with: onMessage) }
        client.start()
        try await client.waitUntilConnected(timeout: .seconds(10))
        return client
    }

    /// Publishes `count` QoS 1 readings round-robin over the devices in chunks: a chunk is
    /// queued without waiting, and its last message is awaited (the broker acknowledges in
    /// order). Queueing a whole burst at once would make the publisher the bottleneck:
    /// libmosquitto 2.0 walks its whole outgoing list on every PUBACK.
    func publishBurst(_ client: MQTTClient, count: Int, offset: Int, prefix: String = "dtwin") async throws {
        var n = offset
        while n < offset + count {
            let end = min(n + chunk, offset + count)
            while n < end - 1 {
                try client.publishWithoutWaiting(topic: topic(n, prefix: prefix), payload: reading(n), qos: .atLeastOnce)
                n += 1
            }
            try await client.publish(topic: topic(n, prefix: prefix), payload: reading(n), qos: .atLeastOnce, timeout: .seconds(60))
            n += 1
        }
    }

    /// Publishes `rate` readings a second for `seconds`, each carrying its publish time.
    func publishSteadily(_ client: MQTTClient, prefix: String = "dtwin") async throws {
        let interval = Duration.seconds(1) / rate
        let start = ContinuousClock.now
        for n in 0..<rate * seconds {
            let due = start + interval * n
            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            try client.publishWithoutWaiting(
                topic: topic(n, prefix: prefix), payload: Array(#"{"value": \#(n), "seq": \#(n), "t": \#(monotonicNanos())}"#.utf8),
                qos: .atLeastOnce)
        }
    }

    /// The latency phase without the bridge: the same publisher at the same rate into a plain
    /// subscriber that notes each arrival on its network thread. What the bridge's latency
    /// cannot go below on this machine at this moment.
    func rawLatency(broker: MosquittoProcess, logger: Logger) async throws -> (count: Int, text: String) {
        let recorder = LatencyRecorder()
        let received = Atomic<Int>(0)
        let subscriber = try await connectedClient(broker: broker, id: "bench-raw-latency", logger: logger) { message in
            recorder.record(payload: String(decoding: message.payload, as: UTF8.self))
            received.add(1, ordering: .relaxed)
        }
        try await subscriber.subscribe(["rawlat/+/up"])
        let publisher = try await connectedClient(broker: broker, id: "bench-raw-latency-pub", logger: logger)
        recorder.start()
        try await publishSteadily(publisher, prefix: "rawlat")
        _ = await waitUntil(timeout: .seconds(60)) { received.load(ordering: .relaxed) >= rate * seconds }
        recorder.stop()
        await publisher.close()
        await subscriber.close()
        return recorder.summary
    }

    func topic(_ n: Int, prefix: String = "dtwin") -> String { "\(prefix)/dev-\(n % devices)/up" }
    func reading(_ n: Int) -> [UInt8] { Array("sim-dev-\(n % devices) data \(n)".utf8) }

    func rawBrokerRate(broker: MosquittoProcess, logger: Logger) async throws -> Double {
        let subscriber = try await connectedClient(broker: broker, id: "bench-raw-sub", logger: logger)
        try await subscriber.subscribe(["dtwin/+/up"])
        let count = Atomic<Int>(0)
        let received = subscriber.messages
        let counter = Task { for await _ in received { count.add(1, ordering: .relaxed) } }
        let publisher = try await connectedClient(broker: broker, id: "bench-raw-pub", logger: logger)
        let start = ContinuousClock.now
        try await publishBurst(publisher, count: messages, offset: 0)
        _ = await waitUntil(timeout: .seconds(120), interval: .milliseconds(2)) { count.load(ordering: .relaxed) >= messages }
        let elapsed = ContinuousClock.now - start
        let rate = Double(count.load(ordering: .relaxed)) / elapsed.seconds
        await publisher.close()
        await subscriber.close()
        await counter.value
        return rate
    }

    /// User + system CPU time of a process so far, from /proc/PID/stat.
    func cpuSeconds(pid: pid_t) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after "(comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The rate `mosquitto_pub -l` (QoS 1) reaches into the same plain subscriber: the
    /// publisher the machine's reference figures (about 23,000 msg/s at QoS 1) were measured with.
    func mosquittoPubRate(broker: MosquittoProcess, logger: Logger) async throws -> Double? {
        let tool = "/usr/bin/mosquitto_pub"
        guard FileManager.default.isExecutableFile(atPath: tool) else { return nil }
        let lines = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-bench-lines-\(UUID().uuidString)")
        // Fed from a file in one piece: mosquitto_pub -l stops early on very long inputs.
        let count = min(messages, 30_000)
        try (0..<count).map { "sim-dev-0 data \($0)" }.joined(separator: "\n").appending("\n")
            .write(to: lines, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: lines) }
        let subscriber = try await connectedClient(broker: broker, id: "bench-ref-sub", logger: logger)
        try await subscriber.subscribe(["ref/+/up"])
        let received = Atomic<Int>(0)
        let stream = subscriber.messages
        let counter = Task { for await _ in stream { received.add(1, ordering: .relaxed) } }
        let start = ContinuousClock.now
        let publisher = try ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "\(tool) -p \(broker.port) -q 1 -t ref/dev-0/up -l < \(lines.path)"])
        _ = await waitUntil(timeout: .seconds(120), interval: .milliseconds(2)) { received.load(ordering: .relaxed) >= count }
        let elapsed = ContinuousClock.now - start
        _ = await publisher.exited(within: .seconds(10))
        let rate = Double(received.load(ordering: .relaxed)) / elapsed.seconds
        await subscriber.close()
        await counter.value
        return rate
    }

    func peakRSS(pid: pid_t) -> String {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return "unknown" }
        return status.split(separator: "\n").first { $0.hasPrefix("VmHWM") }.map {
            $0.replacingOccurrences(of: "VmHWM:", with: "").trimmingCharacters(in: .whitespaces)
        } ?? "unknown"
    }
}

/// Latency samples: the payload carries the publish time (CLOCK_MONOTONIC, shared by every
/// process on the machine), the receiver notes the arrival time.
///
/// It reads requests only between ``start()`` and ``stop()``: decoding every burst request's
/// payload on the receiver's thread would add to each round trip (and take CPU from the
/// bridge) what the floor's receiver does not pay.
final class LatencyRecorder: Sendable {
    private let samples = Mutex<[Double]>([])
    private let recording = Atomic<Bool>(false)

    /// Reads the publish time from the `Payload` parameter of an upstream request's query.
    func record(query: Substring) {
        guard recording.load(ordering: .relaxed) else { return }
        let now = monotonicNanos()
        guard let start = query.range(of: "Payload=") else { return }
        let encoded = query[start.upperBound...].prefix { $0 != "&" }
        guard let payload = encoded.removingPercentEncoding, let data = Data(base64Encoded: payload) else { return }
        record(payload: String(decoding: data, as: UTF8.self), arrivedAt: now)
    }

    /// Reads the publish time from a device payload as the benchmark's publisher wrote it.
    func record(payload: String, arrivedAt now: UInt64 = monotonicNanos()) {
        guard recording.load(ordering: .relaxed), let range = payload.range(of: #""t": "#) else { return }
        let digits = payload[range.upperBound...].prefix { $0.isNumber }
        guard let sent = UInt64(digits) else { return }
        let milliseconds = Double(now &- sent) / 1_000_000
        samples.withLock { $0.append(milliseconds) }
    }

    /// `p50 … ms, p99 … ms, max … ms` of the samples so far.
    var summary: (count: Int, text: String) {
        let sorted = samples.withLock { $0 }.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }
        return (sorted.count, String(format: "p50 %.2f ms, p99 %.2f ms, max %.2f ms", percentile(0.5), percentile(0.99), sorted.last ?? .nan))
    }

    /// Forgets earlier samples and records from now on.
    func start() {
        samples.withLock { $0.removeAll() }
        recording.store(true, ordering: .relaxed)
    }

    func stop() { recording.store(false, ordering: .relaxed) }
}

func monotonicNanos() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
