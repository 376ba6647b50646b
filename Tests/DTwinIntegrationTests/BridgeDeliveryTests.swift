import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinStore
import DTwinTestSupport
import Foundation
import Synchronization
import Testing

/// The bridge in `apigw` mode against a real broker and a real HTTP server standing in for
/// API Gateway.
@Suite struct BridgeDeliveryTests {
    @Test func readingsFromSeveralDevicesArriveInTheContractWithPayloadsIntact() async throws {
        let gateway = try await HTTPReceiver.start()
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        var sent: [String: [[UInt8]]] = [:]
        for round in 0..<15 {
            for device in ["uno1", "uno2", "esp-3"] {
                // Text, JSON and binary (every byte value, and bytes that are not UTF-8).
                let payload: [UInt8] =
                    switch round % 3 {
                    case 0: Array("sim-\(device) data \(round)".utf8)
                    case 1: Array(#"{"value": \#(round).5, "seq": \#(round)}"#.utf8)
                    default: [UInt8(round), 0x00, 0xFF, 0xC3, 0x28] + (0...255).map(UInt8.init)
                    }
                sent[device, default: []].append(payload)
                try await bridge.publish("dtwin/\(device)/up", payload)
            }
        }
        #expect(await gateway.waitForRequests(45))
        let requests = gateway.requests
        #expect(requests.count == 45)
        for device in sent.keys {
            let mine = requests.filter { $0.query["SimUniqueName"] == device }
            // Payloads intact and, per device, in the order they were published.
            #expect(mine.map { Array(Data(base64Encoded: $0.query["Payload"] ?? "") ?? Data()) } == sent[device])
            for request in mine {
                #expect(request.method == "GET")
                #expect(request.path == "/digitaltwin")
                #expect(request.query["PayloadType"] == "binary")
                #expect(request.query["Direction"] == "from_sim")
                #expect(request.query["Status"] == "received")
                #expect(request.query["Topic"] == "dtwin/\(device)/up")
                #expect(request.query["Source"] == "mqtt")
                #expect(request.query["ReceivedAt"].flatMap(Timestamp.parseMillis) != nil)
            }
        }
        #expect(Set(requests.compactMap { $0.query["MessageId"] }).count == 45)
        // No twin table here: a request to change a twin is refused, saying what would keep one.
        try await bridge.publish("dtwin/uno1/state/set", #"{"desired": {"led": true}}"#)
        #expect(await bridge.watcher.waitFor { _ in !bridge.payloads(on: "dtwin/uno1/state/rejected").isEmpty })
        let rejection = bridge.payloads(on: "dtwin/uno1/state/rejected").first ?? ""
        #expect(rejection.contains(#""code":501"#) && rejection.contains("store.kind: dynamodb"), "\(rejection)")
        #expect(bridge.payloads(on: "dtwin/uno1/down").isEmpty && bridge.payloads(on: "dtwin/uno1/state").isEmpty)
        await bridge.stop()
        await gateway.stop()
    }

    @Test func postSendsTheParametersAsAFormBodyToo() async throws {
        let gateway = try await HTTPReceiver.start()
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url + "?stage=test"
            $0.upstream.method = .post
        }
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 7")
        #expect(await gateway.waitForRequests(1))
        let request = try #require(gateway.requests.first)
        #expect(request.method == "POST")
        #expect(request.query["stage"] == "test")
        #expect(request.headers["content-type"] == "application/x-www-form-urlencoded")
        let form = try #require(URLComponents(string: "http://x/?" + String(decoding: request.body, as: UTF8.self))?.queryItems)
        #expect(form.first { $0.name == "SimUniqueName" }?.value == "uno1")
        #expect(form.first { $0.name == "Payload" }?.value == Data("sim-uno1 data 7".utf8).base64EncodedString())
        await bridge.stop()
        await gateway.stop()
    }

    @Test func repliesArePublishedOnTheDevicesDownTopic() async throws {
        let gateway = try await HTTPReceiver.start { request in
            request.query["SimUniqueName"] == "uno1" ? .init(body: #"{"reply": "LIG"}"#) : .init(body: #"{"ok": true}"#)
        }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 900")
        try await bridge.publish("dtwin/uno2/up", "sim-uno2 data 900")
        #expect(await bridge.watcher.waitFor { $0.contains { $0.topic == "dtwin/uno1/down" } })
        #expect(await gateway.waitForRequests(2))
        #expect(bridge.payloads(on: "dtwin/uno1/down") == ["LIG"])
        #expect(bridge.payloads(on: "dtwin/uno2/down").isEmpty)
        await bridge.stop(keepFiles: true)  // a graceful stop drains every delivery first
        defer { bridge.removeFiles() }
        await gateway.stop()
    }

    @Test func permanentFailuresAreDeadLetteredWithTheReason() async throws {
        let gateway = try await HTTPReceiver.start { request in
            request.query["SimUniqueName"] == "bad" ? .init(status: 400, body: #"{"message": "Invalid request"}"#) : .init()
        }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        try await bridge.publish("dtwin/bad/up", [0xDE, 0xAD])
        try await bridge.publish("dtwin/good/up", "sim-good data 1")
        #expect(await bridge.watcher.waitFor { $0.contains { $0.topic == "dtwin/bridge/deadletter" } })
        let letter = try #require(bridge.deadLetters.first)
        #expect(letter.reason.contains("400"))
        #expect(letter.reason.contains("Invalid request"))
        #expect(letter.payloadBytes == [0xDE, 0xAD])
        #expect(letter.topic == "dtwin/bad/up")
        #expect(letter.attempts == 1)
        #expect(await gateway.waitForRequests(2))
        #expect(bridge.deadLetters.count == 1)
        await bridge.stop()
        await gateway.stop()
    }

    @Test func retriesKeepTheMessageIDAndAStuckDeviceHoldsUpNobody() async throws {
        // "stuck" is refused until every other device's reading is delivered: if it held them up,
        // that would never happen and the wait below would time out.
        let fineDelivered = Atomic<Int>(0)
        let gateway = try await HTTPReceiver.start { request in
            if request.query["SimUniqueName"] == "stuck" {
                return fineDelivered.load(ordering: .relaxed) < 20 ? .init(status: 503, body: "busy") : .init()
            }
            fineDelivered.add(1, ordering: .relaxed)
            return .init()
        }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
            $0.upstream.retry = .init(initial: .milliseconds(50), max: .milliseconds(100), maxAge: .seconds(3600))
        }
        try await bridge.publish("dtwin/stuck/up", "sim-stuck data 1")
        try await bridge.publish("dtwin/stuck/up", "sim-stuck data 2")
        for n in 0..<20 { try await bridge.publish("dtwin/fine-\(n % 4)/up", "sim-fine-\(n % 4) data \(n)") }
        let second = Data("sim-stuck data 2".utf8).base64EncodedString()
        #expect(await waitUntil(timeout: .seconds(20)) { gateway.requests.contains { $0.query["Payload"] == second } })
        let stuck = gateway.requests.filter { $0.query["SimUniqueName"] == "stuck" }
        // Every attempt of the first message carries the same MessageId; the second waited its turn.
        let firstID = try #require(stuck.first?.query["MessageId"])
        #expect(stuck.count >= 3, "the first message was never retried")
        #expect(stuck.dropLast().allSatisfy { $0.query["MessageId"] == firstID })
        #expect(stuck.last?.query["Payload"] == second && stuck.last?.query["MessageId"] != firstID)
        #expect(fineDelivered.load(ordering: .relaxed) == 20)
        #expect(bridge.deadLetters.isEmpty)
        await bridge.stop()
        await gateway.stop()
    }

    @Test func refusedConnectionsAndTimeoutsAreRetriedUntilTheUpstreamAnswers() async throws {
        let port = try freeLoopbackPort()
        // Nothing listens yet, and nothing else may take the port meanwhile (a parallel test's
        // server, or the bridge's own connection from it to it: a TCP self-connect).
        let reservation = try PortReservation(port: port)
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = "http://127.0.0.1:\(port)/digitaltwin"
            $0.upstream.timeout = .milliseconds(300)
        }
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 1")
        // The bridge keeps retrying. Then the upstream appears, slow at first.
        #expect(await waitUntil { bridge.application.bridge.counters.snapshot.retries >= 2 })
        reservation.release()
        let slowOnce = Atomic<Int>(0)
        let gateway = try await HTTPReceiver.start(port: port) { _ in
            slowOnce.add(1, ordering: .relaxed).newValue == 1 ? .init(body: "{}", delay: .seconds(1)) : .init()
        }
        #expect(await gateway.waitForRequests(2))
        let requests = gateway.requests
        #expect(Set(requests.compactMap { $0.query["MessageId"] }).count == 1)
        #expect(bridge.deadLetters.isEmpty)
        await bridge.stop()
        await gateway.stop()
    }

    /// The test receiver on a port already taken fails with the reason instead of waiting for
    /// ever (it once hung a whole test run when a parallel test took the port first).
    @Test func aTestReceiverOnATakenPortFailsSayingSo() async throws {
        let first = try await HTTPReceiver.start { _ in .init() }
        do {
            let second = try await HTTPReceiver.start(port: first.port) { _ in .init() }
            await second.stop()
            Issue.record("a second receiver started on port \(first.port)")
        } catch {
            #expect("\(error)".contains("did not start on 127.0.0.1:\(first.port)"))
        }
        await first.stop()
    }

    @Test func badInputIsDeadLetteredOrIgnoredAndDisturbsNothing() async throws {
        let gateway = try await HTTPReceiver.start { _ in .init(body: "<html>not json</html>") }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
            $0.maxPayload = 1024
        }
        try await bridge.publish("dtwin/uno1/up", [UInt8](repeating: 0x41, count: 1025))  // over the limit
        try await bridge.publish("dtwin/no.dots/up", "sim-x data 1")  // invalid device name
        try await bridge.publish("dtwin/uno1/up/extra", "x")  // outside the tree
        try await bridge.publish("elsewhere/uno1/up", "x")  // another prefix
        try await bridge.publish("dtwin/uno1/up", [0xFF, 0xFE, 0xFD])  // not UTF-8: forwarded as bytes
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 5")
        #expect(await gateway.waitForRequests(2))
        #expect(await bridge.watcher.waitFor { $0.filter { $0.topic == "dtwin/bridge/deadletter" }.count == 2 })
        let reasons = bridge.deadLetters.map(\.reason).joined(separator: "\n")
        #expect(reasons.contains("1025 bytes"))
        #expect(reasons.contains("invalid device name"))
        #expect(bridge.deadLetters.first { $0.reason.contains("1025") }?.payloadBytes?.count == 1025)
        let payloads = gateway.requests.map { Array(Data(base64Encoded: $0.query["Payload"] ?? "") ?? Data()) }
        #expect(payloads == [[0xFF, 0xFE, 0xFD], Array("sim-uno1 data 5".utf8)])
        // The non-JSON answer meant "delivered, no reply": nothing went down.
        #expect(bridge.payloads(on: "dtwin/uno1/down").isEmpty)
        #expect(gateway.requestCount == 2)
        await bridge.stop()
        await gateway.stop()
    }

    /// A device's 1 MB payload on a broker that takes messages up to 1 MiB (the production
    /// broker's limit): whole, its dead letter would be a 1.4 MB publish that such a broker
    /// drops (message_size_limit) or disconnects the bridge for (max_packet_size), again at
    /// every reconnect. It carries the first 192 KiB and the size instead, and readings go on.
    @Test func anOversizedPayloadsDeadLetterFitsTheBrokersLimit() async throws {
        let broker = try MosquittoProcess(extraConfiguration: ["max_packet_size 1049600"])
        let bridge = try await BridgeHarness(broker: broker) {
            $0.devices = [try! DeviceName(validating: "uno1"): .init(reply: "ACK")]
        }
        let payload = (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0) }
        try await bridge.publish("dtwin/uno1/up", payload)
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 7")
        #expect(await bridge.watcher.waitFor { $0.contains { $0.topic == "dtwin/bridge/deadletter" } })
        let letter = try #require(bridge.deadLetters.first)
        #expect(letter.payloadSize == 1_000_000)
        #expect(letter.payloadBytes == Array(payload.prefix(DeadLetter.includedPayloadLimit)))
        #expect(letter.reason.contains("1000000 bytes"))
        #expect(await bridge.watcher.waitFor { $0.contains { $0.topic == "dtwin/uno1/down" } }, "the next reading was not stored")
        #expect(!broker.log.contains("exceeded maximum packet size"), "the broker refused the bridge's publish")
        await bridge.stop()
    }

    @Test func redirectsAndHugeAnswersAreDeadLetteredNotFollowed() async throws {
        let huge = String(repeating: "x", count: 2 << 20)
        let gateway = try await HTTPReceiver.start { request in
            request.query["SimUniqueName"] == "moved"
                ? .init(status: 301, body: "")
                : .init(body: #"{"reply": "\#(huge)"}"#)
        }
        let bridge = try await BridgeHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        try await bridge.publish("dtwin/moved/up", "1")
        try await bridge.publish("dtwin/chatty/up", "2")
        #expect(await bridge.watcher.waitFor { $0.filter { $0.topic == "dtwin/bridge/deadletter" }.count == 2 })
        let reasons = bridge.deadLetters.map(\.reason)
        #expect(reasons.contains { $0.contains("301") && $0.contains("redirect") })
        #expect(reasons.contains { $0.contains("over 1048576 bytes") })
        #expect(gateway.requestCount == 2)  // neither was retried nor followed
        #expect(bridge.payloads(on: "dtwin/chatty/down").isEmpty)
        await bridge.stop()
        await gateway.stop()
    }

    @Test func aBrokerAbsentAtStartUpIsWaitedFor() async throws {
        let broker = try MosquittoProcess()
        broker.stop()
        let gateway = try await HTTPReceiver.start()
        var configuration = BridgeHarness.testConfiguration(broker: broker, directory: FileManager.default.temporaryDirectory)
        configuration.upstream.mode = .apigw
        configuration.upstream.url = gateway.url
        let application = try BridgeApplication(
            configuration: configuration, environment: [:], logger: BridgeHarness.logger, handleSignals: false)
        let running = Task { try await application.run() }
        // The bridge is up and retrying against nothing.
        #expect(await waitUntil { application.bridge.brokerError != nil })
        #expect(!application.bridge.brokerConnected)
        try broker.start()
        let device = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        #expect(await device.waitFor(timeout: .seconds(15)) { $0.contains { $0.payload == Array("online".utf8) } })
        try await device.client.publish(topic: "dtwin/late/up", payload: Array("sim-late data 1".utf8))
        #expect(await gateway.waitForRequests(1))
        await application.shutdown()
        try await running.value
        await device.close()
        broker.stop()
        await gateway.stop()
    }
}

/// `local` mode: the in-process Lambda stores items in the SQLite twin table.
@Suite struct LocalModeTests {
    @Test func storesItemsInSQLiteAndAutoReplies() async throws {
        let bridge = try await BridgeHarness {
            $0.devices = [try! DeviceName(validating: "uno1"): .init(reply: "ACK")]
        }
        try await bridge.publish("dtwin/uno1/up", "sim-uno1 data 512")
        try await bridge.publish("dtwin/uno1/up", #"{"value": 3.5, "seq": 9, "ts": 1700000000000}"#)
        try await bridge.publish("dtwin/uno1/up", "uno1:awake")
        try await bridge.publish("dtwin/uno2/up", [0x01, 0xFF])
        #expect(await bridge.watcher.waitFor { $0.filter { $0.topic == "dtwin/uno1/down" }.count == 3 })
        #expect(bridge.payloads(on: "dtwin/uno1/down") == ["ACK", "ACK", "ACK"])
        #expect(bridge.payloads(on: "dtwin/uno2/down").isEmpty)
        await bridge.stop(keepFiles: true)  // a graceful stop drains every delivery first
        defer { bridge.removeFiles() }

        let store = try SQLiteTwinStore(path: bridge.configuration.store.path)
        let items = try await store.items(device: try DeviceName(validating: "uno1"), since: nil, until: nil, limit: 10)
        #expect(items.count == 3)
        #expect(Set(items.map(\.kind)) == [.reading, .awake])
        #expect(items.contains { $0.value == 512 && $0.kind == .reading })
        #expect(items.contains { $0.value == 3.5 && $0.seq == 9 && $0.ts == "2023-11-14T22:13:20.000Z" })
        let binary = try await store.items(device: try DeviceName(validating: "uno2"), since: nil, until: nil, limit: 10)
        #expect(binary.first?.payload == "Af8=")
        #expect(binary.first?.payloadEncoding == "base64")
        // Idempotent on messageid: the same item again changes nothing.
        let again = try #require(items.first)
        #expect(try await store.put(again) == false)
        #expect(try await store.items(device: try DeviceName(validating: "uno1"), since: nil, until: nil, limit: 10).count == 3)
        try await store.close()
    }
}
