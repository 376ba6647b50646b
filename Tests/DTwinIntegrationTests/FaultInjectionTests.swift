import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinSpool
import DTwinTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Faults against the real `dtwin bridge` process, a real mosquitto (persistence on) and a real
/// HTTP upstream: each test publishes numbered readings, injects its fault mid-stream, and
/// checks that every reading the broker acknowledged reaches the upstream. Duplicates are
/// allowed (at-least-once; they carry the same `MessageId` when they come from the spool);
/// losses are not.
@Suite(.serialized) struct FaultInjectionTests {
    /// One test's broker, upstream, bridge environment and publisher.
    final class Rig: Sendable {
        let broker: MosquittoProcess
        let gateway: HTTPReceiver
        let directory: URL
        let publisher: MQTTClient
        let environment: [String: String]
        /// Reading numbers the upstream received, with repeats.
        let delivered = Deliveries()
        let devices = ["uno1", "uno2", "esp-3", "esp-4"]

        init(answer: @escaping @Sendable () -> HTTPReceiver.Answer = { .init() }) async throws {
            broker = try MosquittoProcess()
            directory = try makeTemporaryFolder("dtwin-fault")
            let delivered = self.delivered
            gateway = try await HTTPReceiver.start { request in
                if let number = Rig.readingNumber(request) { delivered.add(number) }
                return answer()
            }
            environment = [
                "DTWIN_BROKER": broker.url, "DTWIN_UPSTREAM_MODE": "apigw", "DTWIN_UPSTREAM_URL": gateway.url,
                "DTWIN_STORE_PATH": directory.appendingPathComponent("twin.sqlite").path,
                "DTWIN_SPOOL_PATH": directory.appendingPathComponent("spool").path,
                // Fixed: the broker keeps this session's messages while the bridge is down.
                "DTWIN_CLIENTID": "fault-bridge", "DTWIN_SHUTDOWNTIMEOUT": "5s", "DTWIN_HTTP_PORT": "0",
                "DTWIN_UPSTREAM_RETRY_INITIAL": "20ms", "DTWIN_UPSTREAM_RETRY_MAX": "200ms", "DTWIN_LOGLEVEL": "info",
            ]
            var configuration = MQTTClientConfiguration(port: broker.port, clientID: "fault-devices", cleanSession: true)
            configuration.reconnectDelay = (.milliseconds(20), .milliseconds(200))
            publisher = try MQTTClient(configuration: configuration, logger: Logger(label: "devices"))
            publisher.start()
            try await publisher.waitUntilConnected(timeout: .seconds(10))
        }

        /// The `n` in a `sim-<dev> data <n>` payload the upstream received.
        static func readingNumber(_ request: HTTPReceiver.Request) -> Int? {
            guard let payload = request.query["Payload"], let data = Data(base64Encoded: payload),
                let text = String(data: data, encoding: .utf8), let last = text.split(separator: " ").last
            else { return nil }
            return Int(last)
        }

        var log: URL { directory.appendingPathComponent("bridge.log") }

        /// Starts `dtwin bridge` and waits until it announces `online`.
        func startBridge() async throws -> ChildProcess {
            let status = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
            defer { Task { await status.close() } }
            // Appends: the log of every run of the bridge in this test, for a failure's message.
            let bridge = try ChildProcess(
                executable: DTwinBinary.path, arguments: ["bridge"],
                environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: log.path)
            guard await status.waitFor(timeout: .seconds(20), { $0.last?.payload == Array("online".utf8) }) else {
                throw TestSupportError("the bridge did not come online: \(bridgeLog.suffix(2000))")
            }
            return bridge
        }

        var bridgeLog: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// Publishes readings `range` round-robin over the devices, each acknowledged by the
        /// broker (QoS 1) before the next; a publish that fails (broker down) is tried again
        /// until it is acknowledged. `pause` between messages keeps the stream going while
        /// faults happen.
        func publish(_ range: Range<Int>, pause: Duration = .microseconds(500)) async throws {
            for n in range {
                let device = devices[n % devices.count]
                let deadline = ContinuousClock.now + .seconds(30)
                while true {
                    do {
                        try await publisher.publish(
                            topic: "dtwin/\(device)/up", payload: Array("sim-\(device) data \(n)".utf8), timeout: .seconds(2))
                        break
                    } catch  where ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                }
                if pause > .zero { try await Task.sleep(for: pause) }
            }
        }

        /// Waits (bounded) until every reading in `0..<count` has reached the upstream; returns
        /// the missing ones.
        func missing(of count: Int, timeout: Duration = .seconds(60)) async -> [Int] {
            _ = await waitUntil(timeout: timeout, interval: .milliseconds(50)) {
                Set(delivered.all).isSuperset(of: 0..<count)
            }
            return Array(Set(0..<count).subtracting(delivered.all)).sorted()
        }

        func stop() async {
            await publisher.close()
            await gateway.stop()
            broker.stop()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    final class Deliveries: Sendable {
        private let numbers = Mutex<[Int]>([])
        func add(_ number: Int) { numbers.withLock { $0.append(number) } }
        var all: [Int] { numbers.withLock { $0 } }
    }

    @Test func sigkillMidStreamLosesNothing() async throws {
        let rig = try await Rig()
        var bridge = try await rig.startBridge()
        let total = 3000
        let publishing = Task { try await rig.publish(0..<total) }
        // Kill it twice while readings are arriving, restart it each time.
        for round in 1...2 {
            #expect(await waitUntil(timeout: .seconds(30)) { rig.delivered.all.count >= round * total / 3 })
            bridge.signal(SIGKILL)
            #expect(await bridge.exited(within: .seconds(5)))
            try await Task.sleep(for: .milliseconds(200))
            bridge = try await rig.startBridge()
        }
        try await publishing.value
        let missing = await rig.missing(of: total)
        #expect(missing.isEmpty, "lost \(missing.count): \(missing.prefix(20)); log: \(rig.bridgeLog.suffix(3000))")
        #expect(rig.bridgeLog.contains("delivering messages left in the spool"), "no restart found work in the spool")
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        await rig.stop()
    }

    @Test func sigtermMidStreamExitsCleanlyAndTheRestDeliversAfterARestart() async throws {
        // A slow upstream, so that the spool holds a backlog when the signal comes.
        let rig = try await Rig { .init(delay: .milliseconds(5)) }
        var bridge = try await rig.startBridge()
        let total = 2000
        let publishing = Task { try await rig.publish(0..<total, pause: .zero) }
        #expect(await waitUntil(timeout: .seconds(30)) { rig.delivered.all.count >= 200 })
        let signalled = ContinuousClock.now
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        #expect(bridge.exitCode == 0, "\(rig.bridgeLog.suffix(2500))")
        #expect(ContinuousClock.now - signalled < .seconds(7), "shutdownTimeout is 5s")
        #expect(rig.bridgeLog.contains("spool closed"))
        try await publishing.value
        bridge = try await rig.startBridge()
        let missing = await rig.missing(of: total)
        #expect(missing.isEmpty, "lost \(missing.count): \(missing.prefix(20)); log: \(rig.bridgeLog.suffix(3000))")
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        await rig.stop()
    }

    @Test func anUpstreamOutageIsWaitedOutAndDrained() async throws {
        let outageEnds = ContinuousClock.now + .seconds(3)
        let rig = try await Rig { ContinuousClock.now < outageEnds ? .init(status: 503, body: "down for maintenance") : .init() }
        let bridge = try await rig.startBridge()
        let total = 400
        try await rig.publish(0..<total, pause: .zero)
        #expect(ContinuousClock.now < outageEnds, "the readings should all be published during the outage")
        let missing = await rig.missing(of: total)
        #expect(missing.isEmpty, "lost \(missing.count): \(missing.prefix(20))")
        let log = rig.bridgeLog
        #expect(log.contains("delivery failed; will retry"))
        #expect(!log.contains("dead letter"))
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        await rig.stop()
    }

    @Test func aReplyWaitingForTheBrokerSurvivesASIGKILLOfTheBridge() async throws {
        // The upstream replies after a second: time to take the broker away in between.
        let rig = try await Rig { .init(body: #"{"reply":"ACK"}"#, delay: .seconds(1)) }
        let device = try await MessageCollector(
            port: rig.broker.port, filters: ["dtwin/uno1/down"], clientID: "device-uno1", cleanSession: false)
        var bridge = try await rig.startBridge()
        try await rig.publish(0..<1)  // reading 0 comes from uno1
        #expect(await waitUntil(timeout: .seconds(10)) { rig.delivered.all.count == 1 })
        rig.broker.stop()
        // The reply is in the spool file, waiting for the broker; then the bridge dies.
        let spoolFile = rig.directory.appendingPathComponent("spool/spool.sqlite").path
        #expect(await waitUntil(timeout: .seconds(10)) { (try? Spool(path: spoolFile, maxBytes: 1 << 20).outboundCount) == 1 })
        bridge.signal(SIGKILL)
        #expect(await bridge.exited(within: .seconds(5)))
        try rig.broker.start()
        bridge = try await rig.startBridge()
        #expect(
            await device.waitFor(timeout: .seconds(20)) { $0.contains { $0.payload == Array("ACK".utf8) } },
            "log: \(rig.bridgeLog.suffix(3000))")
        await device.close()
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        await rig.stop()
    }

    @Test func aBrokerRestartMidStreamLosesNothing() async throws {
        let rig = try await Rig()
        let bridge = try await rig.startBridge()
        let total = 2000
        let publishing = Task { try await rig.publish(0..<total) }
        #expect(await waitUntil(timeout: .seconds(30)) { rig.delivered.all.count >= total / 3 })
        // SIGTERM: mosquitto saves its persistence file (queued QoS 1 messages included).
        rig.broker.stop()
        try await Task.sleep(for: .milliseconds(500))
        try rig.broker.start()
        try await publishing.value
        let missing = await rig.missing(of: total)
        #expect(missing.isEmpty, "lost \(missing.count): \(missing.prefix(20)); log: \(rig.bridgeLog.suffix(3000))")
        #expect(bridge.isRunning)
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        await rig.stop()
    }
}

/// A spool at `spool.maxBytes` while the upstream is down: the bridge stops taking messages
/// (the broker keeps them), says so, and delivers every one once the upstream is back.
@Suite struct SpoolBackpressureTests {
    /// The upstream: 503 until opened, then 200; remembers the payloads it answered 200.
    final class Gate: Sendable {
        private let opened = Atomic<Bool>(false)
        private let accepted = Mutex<Set<String>>([])
        func open() { opened.store(true, ordering: .relaxed) }
        var delivered: Set<String> { accepted.withLock { $0 } }

        func answer(_ request: HTTPReceiver.Request) -> HTTPReceiver.Answer {
            guard opened.load(ordering: .relaxed) else { return .init(status: 503) }
            if let payload = request.query["Payload"] { accepted.withLock { _ = $0.insert(payload) } }
            return .init()
        }
    }

    @Test func aFullSpoolHoldsTheBrokerBackAndLosesNothing() async throws {
        let gate = Gate()
        let gateway = try await HTTPReceiver.start { gate.answer($0) }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
            // Far below what the YAML allows (1MB): room for about 15 of these messages.
            $0.spool.maxBytes = 2_000
        }
        let total = 40
        for n in 0..<total { try await bridge.publish("dtwin/uno\(n % 2)/up", "sim-uno\(n % 2) data \(n)") }
        #expect(await waitUntil(timeout: .seconds(10)) { bridge.application.bridge.spoolRefusing })
        let spooled = bridge.application.bridge.spoolDepth ?? 0
        #expect(spooled > 0 && spooled < total, "\(spooled) messages in a 2,000-byte spool")
        // Said where monitoring looks: not ready, and the metrics.
        let ready = try await bridge.get("/readyz")
        #expect(ready.status == 503 && ready.body.contains("the spool refuses messages"), "\(ready)")
        let refusing = try await bridge.get("/metrics")
        #expect(refusing.body.contains("\ndtwin_spool_refusing 1"), "\(refusing.body)")
        gate.open()
        #expect(await waitUntil(timeout: .seconds(30)) { gate.delivered.count == total })
        #expect(!bridge.application.bridge.spoolRefusing)
        #expect(try await bridge.get("/readyz").status == 200)
        let metrics = try await bridge.get("/metrics").body
        #expect(metrics.contains("\ndtwin_spool_refusing 0"))
        #expect(metrics.contains("dtwin_messages_received_total \(total)"), "\(metrics)")
        #expect(metrics.contains(#"dtwin_messages_delivered_total{upstream="apigw"}"#))
        #expect(bridge.deadLetters.isEmpty)
        await bridge.stop()
        await gateway.stop()
    }
}
