import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// The MQTT client against a real mosquitto started for each test.
@Suite struct MQTTClientBrokerTests {
    static var logger: Logger {
        var logger = Logger(label: "mqtt-test")
        logger.logLevel = .warning
        return logger
    }

    func client(_ broker: MosquittoProcess, id: String, cleanSession: Bool = true, configure: (inout MQTTClientConfiguration) -> Void = { _ in })
        throws -> MQTTClient
    {
        var configuration = MQTTClientConfiguration(port: broker.port, clientID: id, cleanSession: cleanSession)
        configuration.reconnectDelay = (.milliseconds(50), .milliseconds(400))
        configure(&configuration)
        return try MQTTClient(configuration: configuration, logger: Self.logger)
    }

    /// The fact the bridge's spool rests on: with ``MQTTClient/handleMessages(with:)``, the
    /// PUBACK for a QoS 1 message leaves only after the handler returns. Read off the broker's
    /// own debug log ("Received PUBACK from <client>").
    @Test func theAcknowledgementWaitsForTheMessageHandler() async throws {
        let broker = try MosquittoProcess(extraConfiguration: ["log_type debug"])
        defer { broker.stop() }
        let subscriber = try client(broker, id: "slow-sub", cleanSession: false)
        let handled = Atomic<Int>(0)
        let release = Atomic<Bool>(false)
        subscriber.handleMessages { _ in
            // Blocks the network thread, as a spool write does, until the test lets go.
            let deadline = Date().addingTimeInterval(10)
            while !release.load(ordering: .relaxed) && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
            handled.add(1, ordering: .relaxed)
        }
        subscriber.addSubscription("t/slow", qos: .atLeastOnce)
        subscriber.start()
        try await subscriber.waitUntilConnected(timeout: .seconds(10))
        #expect(await waitUntil(timeout: .seconds(5)) { broker.log.contains("Sending SUBACK to slow-sub") })
        let publisher = try client(broker, id: "pub-slow")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        try await publisher.publish(topic: "t/slow", payload: Array("x".utf8), qos: .atLeastOnce)
        // The broker sent it; the handler holds it; no PUBACK may have come back.
        #expect(await waitUntil(timeout: .seconds(5)) { broker.log.contains("Sending PUBLISH to slow-sub") })
        // A later marker instead of a pause: once the broker has taken a publish sent after that
        // line, a PUBACK sent on receipt would have reached it first.
        try await publisher.publish(topic: "t/marker", payload: Array("m".utf8), qos: .atLeastOnce)
        #expect(await waitUntil(timeout: .seconds(5)) { broker.log.contains("Received PUBLISH from pub-slow") && broker.log.contains("'t/marker'") })
        #expect(!broker.log.contains("Received PUBACK from slow-sub"))
        #expect(handled.load(ordering: .relaxed) == 0)
        release.store(true, ordering: .relaxed)
        #expect(await waitUntil(timeout: .seconds(5)) { broker.log.contains("Received PUBACK from slow-sub") })
        #expect(handled.load(ordering: .relaxed) == 1)
        await publisher.close()
        await subscriber.close()
    }

    /// `select(2)` cannot watch a descriptor numbered 1024 or above, and libmosquitto's own
    /// `mosquitto_loop` refuses one (MOSQ_ERR_INVAL): a process with many open connections
    /// could never talk to its broker again. The client polls instead. Here the process holds
    /// 1,100 more descriptors, so the client's socket is numbered above 1024.
    @Test func aSocketNumberedAbove1024StillWorks() async throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        try #require(limit.rlim_cur >= 2048, "RLIMIT_NOFILE \(limit.rlim_cur) is too low for this test")
        let held = (0..<1100).map { _ in open("/dev/null", O_RDONLY | O_CLOEXEC) }
        defer { for fd in held where fd >= 0 { close(fd) } }
        try #require(held.allSatisfy { $0 >= 0 })
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "high-fd-sub")
        subscriber.addSubscription("t/high", qos: .atLeastOnce)
        subscriber.start()
        try await subscriber.waitUntilConnected(timeout: .seconds(10))
        let publisher = try client(broker, id: "high-fd-pub")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        try await publisher.publish(topic: "t/high", payload: Array("above 1024".utf8), qos: .atLeastOnce, timeout: .seconds(10))
        var iterator = subscriber.messages.makeAsyncIterator()
        let message = await iterator.next()
        #expect(message.map { String(decoding: $0.payload, as: UTF8.self) } == "above 1024")
        await publisher.close()
        await subscriber.close()
    }

    @Test func publishesAndReceivesBinaryPayloadsIntact() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let collector = try await MessageCollector(port: broker.port, filters: ["t/#"])
        let publisher = try client(broker, id: "pub")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        let payloads: [[UInt8]] = [[], Array(0...255).map(UInt8.init), Array("text".utf8), [0, 0, 0]]
        for (index, payload) in payloads.enumerated() {
            try await publisher.publish(topic: "t/\(index)", payload: payload, qos: .atLeastOnce)
        }
        #expect(await collector.waitFor { $0.count == payloads.count })
        let received = collector.messages.sorted { $0.topic < $1.topic }
        #expect(received.map(\.payload) == payloads)
        #expect(received.allSatisfy { $0.qos == .atLeastOnce && !$0.retain })
        await publisher.close()
        await collector.close()
    }

    @Test func aPublishReturnsOnlyOnceTheBrokerHasIt() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try client(broker, id: "retainer")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        for n in 0..<200 {
            try await publisher.publish(topic: "r/\(n)", payload: Array("\(n)".utf8), retain: true)
        }
        await publisher.close()
        // A new subscriber gets every retained message: each publish had been acknowledged.
        let collector = try await MessageCollector(port: broker.port, filters: ["r/#"])
        #expect(await collector.waitFor { $0.count == 200 })
        #expect(collector.messages.allSatisfy { $0.retain })
        await collector.close()
    }

    @Test func reconnectsResubscribesAndGetsWhatWasQueuedMeanwhile() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "persistent-sub", cleanSession: false)
        subscriber.addSubscription("p/#")
        subscriber.start()
        try await subscriber.waitUntilConnected(timeout: .seconds(10))
        let received = ReceivedPayloads(subscriber)
        #expect(await waitUntil { received.count == 0 && subscriber.isConnected })

        broker.stop()  // SIGTERM: mosquitto saves the persistent session
        #expect(await waitUntil { !subscriber.isConnected })
        try broker.start()
        #expect(await waitUntil(timeout: .seconds(15)) { subscriber.isConnected })

        let publisher = try client(broker, id: "pub2")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))
        try await publisher.publish(topic: "p/after-restart", payload: Array("1".utf8))
        #expect(await waitUntil { received.topics.contains("p/after-restart") })

        // Offline for a while: the broker queues QoS 1 messages for the persistent session.
        await subscriber.close()
        for n in 0..<50 { try await publisher.publish(topic: "p/queued", payload: Array("\(n)".utf8)) }
        let again = try client(broker, id: "persistent-sub", cleanSession: false)
        again.addSubscription("p/#")
        again.start()
        let queued = ReceivedPayloads(again)
        #expect(await waitUntil { queued.count == 50 })
        #expect(queued.payloads == (0..<50).map { Array("\($0)".utf8) })
        await again.close()
        await publisher.close()
    }

    /// libmosquitto keeps a QoS 1 message published while the connection is down and sends it
    /// once the connection is back: the publish waits for that acknowledgement instead of failing
    /// at once (a caller told it had failed published it again, and the broker got both).
    @Test func aPublishWhileDisconnectedIsDeliveredOnceWhenTheBrokerIsBack() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let subscriber = try client(broker, id: "offline-sub", cleanSession: false)
        subscriber.addSubscription("q/#")
        subscriber.start()
        try await subscriber.waitUntilConnected(timeout: .seconds(10))
        let received = ReceivedPayloads(subscriber)
        let publisher = try client(broker, id: "offline-pub")
        publisher.start()
        try await publisher.waitUntilConnected(timeout: .seconds(10))

        broker.stop()
        #expect(await waitUntil { !publisher.isConnected })
        let attempted = Atomic<Bool>(false)
        let publishing = Task {
            attempted.store(true, ordering: .relaxed)
            try await publisher.publish(topic: "q/while-down", payload: Array("1".utf8), timeout: .seconds(30))
        }
        #expect(await waitUntil { attempted.load(ordering: .relaxed) })
        try broker.start()
        try await publishing.value
        // A marker published after it arrives after it: by then any second copy would have too.
        try await publisher.publish(topic: "q/after", payload: Array("2".utf8))
        #expect(await waitUntil(timeout: .seconds(15)) { received.topics.contains("q/after") })
        #expect(received.topics.filter { $0 == "q/while-down" }.count == 1)
        await publisher.close()
        await subscriber.close()
    }

    @Test func failsFastWhenNoBrokerListens() async throws {
        let port = try freeLoopbackPort()
        let lonely = try MQTTClient(
            configuration: MQTTClientConfiguration(port: port, clientID: "lonely", cleanSession: true), logger: Self.logger)
        lonely.start()
        let started = ContinuousClock.now
        do {
            try await lonely.waitUntilConnected(timeout: .seconds(120), failFast: true)
            Issue.record("connected to nothing")
        } catch let error as MQTTError {
            #expect(error.code == .unreachable)
            #expect(error.message.contains("127.0.0.1:\(port)"))
        }
        // Fail-fast means the refused connection ends the wait, not the timeout: far below it even
        // on a loaded machine (measured alone: 4 ms; 8 s once while the whole suite ran).
        #expect(ContinuousClock.now - started < .seconds(60))
        await lonely.close()
    }

    @Test func waitingOnAClientThatWasNeverStartedFailsAtOnce() async throws {
        let idle = try MQTTClient(
            configuration: MQTTClientConfiguration(port: 1, clientID: "idle", cleanSession: true), logger: Self.logger)
        await #expect(throws: MQTTError.self) { try await idle.waitUntilConnected(timeout: .seconds(60)) }
        await #expect(throws: MQTTError.self) { try await idle.subscribe(["x"], timeout: .seconds(60)) }
        await idle.close()
    }

    @Test func waitsForABrokerThatStartsLater() async throws {
        let broker = try MosquittoProcess()
        broker.stop()
        defer { broker.stop() }
        let patient = try client(broker, id: "patient")
        patient.start()
        #expect(await waitUntil(timeout: .seconds(1)) { patient.lastError != nil })
        try broker.start()
        try await patient.waitUntilConnected(timeout: .seconds(15))
        #expect(patient.isConnected)
        await patient.close()
    }

    @Test func closeFinishesTheMessageSequenceAndFailsLaterPublishes() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let subject = try client(broker, id: "closer")
        subject.start()
        try await subject.waitUntilConnected(timeout: .seconds(10))
        let drained = Task { for await _ in subject.messages {} }
        await subject.close()
        await drained.value  // would hang if the sequence never finished
        await #expect(throws: MQTTError.self) {
            try await subject.publish(topic: "x", payload: [1])
        }
    }

    @Test func theLastWillIsPublishedWhenAClientVanishes() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let watcher = try await MessageCollector(port: broker.port, filters: ["w/status"])
        // A separate process that connects with a will and is then killed: the broker must
        // publish the will (mosquitto_sub is the simplest real client that can set one).
        let process = try ChildProcess(
            executable: "/usr/bin/mosquitto_sub",
            arguments: [
                "-p", "\(broker.port)", "-i", "will-client", "-t", "nothing", "--will-topic", "w/status", "--will-payload", "offline",
                "--will-retain", "--will-qos", "1",
            ])
        // The will is registered at CONNECT: wait until the broker has logged that connection.
        #expect(await waitUntil { broker.log.contains("as will-client") })
        process.signal(SIGKILL)
        #expect(await process.exited(within: .seconds(10)))
        #expect(await watcher.waitFor { $0.contains { $0.payload == Array("offline".utf8) } })
        await watcher.close()
    }
}

/// Collects what a client receives, for tests that drive the client directly.
final class ReceivedPayloads: Sendable {
    private let storage = LockedArray()
    private let task: Task<Void, Never>

    init(_ client: MQTTClient) {
        let storage = self.storage
        let messages = client.messages
        task = Task { for await message in messages { storage.append(message) } }
    }

    var count: Int { storage.values.count }
    var topics: [String] { storage.values.map(\.topic) }
    var payloads: [[UInt8]] { storage.values.map(\.payload) }
}

final class LockedArray: Sendable {
    private let mutex = Mutex<[MQTTMessage]>([])
    func append(_ message: MQTTMessage) { mutex.withLock { $0.append(message) } }
    var values: [MQTTMessage] { mutex.withLock { $0 } }
}
