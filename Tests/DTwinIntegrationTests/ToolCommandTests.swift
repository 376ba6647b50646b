import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Testing

/// A `dtwin` process running in the background, its output (stdout and stderr) in a file.
final class RunningDTwin: Sendable {
    let process: ChildProcess
    let outputFile: URL

    init(_ arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) throws {
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-tool-\(UUID().uuidString)")
        process = try ChildProcess(
            executable: DTwinBinary.path, arguments: arguments,
            environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: outputFile.path,
            workingDirectory: workingDirectory)
    }

    var output: String { (try? String(contentsOf: outputFile, encoding: .utf8)) ?? "" }
    var lines: [Substring] { output.split(separator: "\n") }

    /// Waits (bounded) until the output contains `text`.
    func waitForOutput(_ text: String, timeout: Duration = .seconds(10)) async -> Bool {
        await waitUntil(timeout: timeout) { self.output.contains(text) }
    }

    /// Waits for the exit (bounded; killed after that); returns the exit code.
    func finish(within timeout: Duration = .seconds(15)) async -> Int32? {
        if !(await process.exited(within: timeout)) { process.signal(SIGKILL) }
        return process.exitCode
    }

    deinit { try? FileManager.default.removeItem(at: outputFile) }
}

/// `dtwin inspect`, `replay`, `simulate` and `send` against a real broker (README: "The command line").
@Suite struct ToolCommandTests {
    /// A retained message on `dtwin/probe/<level>`: every new subscriber to `dtwin/#` gets it at
    /// once, so its line in the output says the tool's subscription is in place.
    static func probe(_ publisher: MessageCollector, level: String = "status", _ payload: String = "online") async throws {
        try await publisher.client.publish(topic: "dtwin/probe/\(level)", payload: Array(payload.utf8), retain: true)
    }

    static func publish(_ publisher: MessageCollector, _ topic: String, _ payload: [UInt8]) async throws {
        try await publisher.client.publish(topic: topic, payload: payload)
    }

    static func json(_ line: Substring) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
    }

    @Test func jsonLinesDecodeEveryKindOfMessage() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["unused/#"])
        try await Self.probe(publisher)
        let inspect = try RunningDTwin(["inspect", "--json", "--count", "7", "--broker", broker.url])
        #expect(await inspect.waitForOutput("probe"))
        try await Self.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data 512".utf8))
        try await Self.publish(publisher, "dtwin/esp-2/up", [0x01, 0x02, 0xFF])
        try await Self.publish(publisher, "dtwin/uno1/down", Array("LIG".utf8))
        try await Self.publish(publisher, "dtwin/bad.name/up", Array("x".utf8))
        let letter = DeadLetter(topic: "dtwin/uno3/up", payload: Array("x".utf8), reason: "upstream answered 400", device: "uno3")
        try await Self.publish(publisher, "dtwin/bridge/deadletter", Array(try JSONEncoder().encode(letter)))
        try await Self.publish(publisher, "dtwin/uno1/sms", Array("door open".utf8))
        #expect(await inspect.finish() == 0, "\(inspect.output)")
        let records = inspect.lines.map(Self.json)
        #expect(records.count == 7, "\(inspect.output)")
        let decoded = records.map { $0["decoded"] as? [String: Any] ?? [:] }
        #expect(decoded.compactMap { $0["type"] as? String } == ["status", "reading", "raw", "command", "invalid-device", "deadletter", "sms"])
        #expect(records.first?["retain"] as? Bool == true && records.dropFirst().allSatisfy { $0["retain"] as? Bool == false })
        #expect(decoded[1]["value"] as? Double == 512 && decoded[1]["device"] as? String == "uno1")
        #expect(records[2]["payloadBase64"] as? String == "AQL/" && records[2]["payload"] == nil)
        #expect(decoded[5]["reason"] as? String == "upstream answered 400" && decoded[5]["device"] as? String == "uno3")
        #expect((decoded[4]["reason"] as? String)?.contains("contains '.'") == true)
        #expect(records.allSatisfy { ($0["at"] as? String).flatMap(Timestamp.parseMillis) != nil && $0["qos"] as? Int != nil })
        await publisher.close()
    }

    @Test func linesArePlainWhenPipedAndRetainedOnlyStopsByItself() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["unused/#"])
        try await Self.probe(publisher)
        try await publisher.client.publish(topic: "dtwin/uno1/status", payload: Array("offline".utf8), retain: true)
        let plain = try await DTwinBinary.run(["inspect", "--retained-only", "--broker", broker.url])
        #expect(plain.code == 0, "\(plain.output)")
        let lines = plain.output.split(separator: "\n")
        #expect(lines.count == 2, "\(plain.output)")
        #expect(lines.contains { $0.contains("dtwin/uno1/status") && $0.contains("q1 R") && $0.hasSuffix("uno1 is offline") })
        #expect(!plain.output.contains("\u{1B}["), "no colours when piped")
        let colored = try await DTwinBinary.run(["inspect", "--retained-only", "--color", "always", "--broker", broker.url])
        #expect(colored.output.contains("\u{1B}[34muno1 is offline\u{1B}[0m"), "\(colored.output.debugDescription)")
        await publisher.close()
    }

    @Test func asEventPrintsTheEventTheBridgeWouldSend() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["unused/#"])
        try await Self.probe(publisher, level: "up", "sim-probe data 1")
        let inspect = try RunningDTwin(["inspect", "--as-event", "--count", "2", "--broker", broker.url])
        #expect(await inspect.waitForOutput("SimUniqueName"))
        try await Self.publish(publisher, "dtwin/uno1/down", Array("LIG".utf8))  // not an event: not shown
        try await Self.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data 77".utf8))
        #expect(await inspect.finish() == 0, "\(inspect.output)")
        let events = inspect.lines.map(Self.json)
        #expect(events.count == 2, "\(inspect.output)")
        let query = try #require(events.last?["queryStringParameters"] as? [String: String])
        #expect(query["SimUniqueName"] == "uno1" && query["Topic"] == "dtwin/uno1/up" && query["Source"] == "mqtt")
        #expect(query["Payload"] == Data("sim-uno1 data 77".utf8).base64EncodedString())
        #expect(events.last?["httpMethod"] as? String == "GET" && events.last?["path"] as? String == "/digitaltwin")
        await publisher.close()
    }

    @Test func countAndTimeoutHaveTheirExitCodes() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let short = try await DTwinBinary.run(["inspect", "--count", "5", "--timeout", "500ms", "--broker", broker.url])
        #expect(short.code == 3, "\(short.output)")
        #expect(short.output.contains("0 of 5 messages before the timeout"))
        let timed = try await DTwinBinary.run(["inspect", "--timeout", "300ms", "--broker", broker.url])
        #expect(timed.code == 0, "\(timed.output)")
    }

    @Test func aRecordingReplaysInOrderWithItsTimingUnderAnotherPrefix() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let publisher = try await MessageCollector(port: broker.port, filters: ["lab/#"])
        let directory = try makeTemporaryFolder("dtwin-rec")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("lab.jsonl").path
        try await Self.probe(publisher)
        let inspect = try RunningDTwin(["inspect", "--record", file, "--count", "6", "--broker", broker.url])
        #expect(await inspect.waitForOutput("probe"))
        for n in 1...5 {
            try await Self.publish(publisher, "dtwin/uno1/up", Array("sim-uno1 data \(n)".utf8))
            try await Task.sleep(for: .milliseconds(150))
        }
        #expect(await inspect.finish() == 0, "\(inspect.output)")
        let recorded = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(recorded.count == 6)

        let started = ContinuousClock.now
        let replay = try await DTwinBinary.run(["replay", file, "--prefix", "lab", "--broker", broker.url])
        let elapsed = ContinuousClock.now - started
        #expect(replay.code == 0, "\(replay.output)")
        #expect(replay.output.contains("replayed 6 messages"))
        // Four gaps of about 150 ms between the readings are kept (a lower bound only: a slow
        // machine may take longer, never less).
        #expect(elapsed >= .milliseconds(450), "\(elapsed)")
        #expect(await publisher.waitFor { $0.count >= 6 })
        #expect(publisher.messages.map(\.topic) == ["lab/probe/status"] + Array(repeating: "lab/uno1/up", count: 5))
        #expect(publisher.messages.dropFirst().map { String(decoding: $0.payload, as: UTF8.self) } == (1...5).map { "sim-uno1 data \($0)" })

        // The whole file is checked first: a bad line is named, and nothing is published.
        let broken = directory.appendingPathComponent("broken.jsonl").path
        try (recorded[0] + "\n{\"at\": 1}\n").write(toFile: broken, atomically: true, encoding: .utf8)
        let refused = try await DTwinBinary.run(["replay", broken, "--broker", broker.url])
        #expect(refused.code == 2 && refused.output.contains("broken.jsonl line 2: not a JSON object"), "\(refused.output)")
        await publisher.close()
    }

    @Test func simulatedDevicesBehaveLikeTheSketch() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/#"])
        // 60 readings at 10 a second: `dtwin send` has six seconds to start and deliver LIG before
        // the simulation ends, even on a loaded machine (with two seconds it once arrived too late).
        let simulate = try RunningDTwin(["simulate", "--devices", "2", "--rate", "10", "--count", "60", "--format", "json", "--broker", broker.url])
        #expect(await watcher.waitFor { $0.contains { $0.topic == "dtwin/sim1/up" && String(decoding: $0.payload, as: UTF8.self).contains("seq") } })
        let sent = try await DTwinBinary.run(["send", "sim1", "LIG", "--broker", broker.url])
        #expect(sent.code == 0)
        #expect(await simulate.finish() == 0, "\(simulate.output)")
        // Each device's last messages travel on its own connection: wait until both said offline.
        #expect(await watcher.waitFor { $0.filter { $0.topic.hasSuffix("/status") && $0.payload == Array("offline".utf8) }.count == 2 })
        #expect(simulate.output.contains("sim1 got LIG: LED on"))
        // 60 each, a state report each at start-up, and one after LIG.
        #expect(simulate.output.contains("2 simulated devices sent 123 readings"), "\(simulate.output.suffix(300))")
        func payloads(_ topic: String) -> [String] { watcher.messages(on: topic).map { String(decoding: $0.payload, as: UTF8.self) } }
        #expect(payloads("dtwin/sim1/status") == ["online", "offline"] && payloads("dtwin/sim2/status") == ["online", "offline"])
        #expect(payloads("dtwin/sim1/up").first == "sim1:awake")
        // 60 readings, and two state reports (at start-up, after LIG), as the sketch sends them.
        let readings = payloads("dtwin/sim1/up").dropFirst().map { DevicePayload.decode(Array($0.utf8)) }
        #expect(readings.count == 62 && readings.allSatisfy { $0.kind == .reading })
        #expect(Set(readings.compactMap(\.seq)) == Set((1...62).map { Int64($0) }))
        let reports = readings.filter { $0.state["period"] != nil && $0.state["led"] != nil }
        #expect(reports.count == 62, "JSON readings carry the LED and period too")
        #expect(payloads("dtwin/sim1/up").dropFirst().first?.hasSuffix(#""led":false,"period":0.1,"firmware":"dtwin-simulate"}"#) == true)
        #expect(
            payloads("dtwin/sim1/up").contains { $0.hasSuffix(#""led":true,"period":0.1,"firmware":"dtwin-simulate"}"#) },
            "the LED's change is reported at once")
        #expect(payloads("dtwin/sim2/up").count == 62, "awake, a state report and 60 readings")
        // After LIG the LED shines on the photoresistor; sim2 never got a command.
        #expect(payloads("dtwin/sim1/up").last?.contains(#""led": "on""#) == true)
        #expect(!payloads("dtwin/sim2/up").contains { $0.contains(#""led": "on""#) })
        await watcher.close()
    }

    @Test func aKilledSimulatorLeavesItsLastWill() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/+/status"])
        let simulate = try RunningDTwin(["simulate", "--name", "uno", "--quiet", "--broker", broker.url])
        #expect(await watcher.waitFor { $0.contains { $0.topic == "dtwin/uno1/status" && $0.payload == Array("online".utf8) } })
        simulate.process.signal(SIGKILL)
        _ = await simulate.finish()
        // The broker, not the simulator, says it: the will set at connect.
        #expect(await watcher.waitFor { $0.last?.payload == Array("offline".utf8) })
        await watcher.close()
    }

    @Test func brokerProblemsAreOneLineAndANonZeroExit() async throws {
        let closedPort = try freeLoopbackPort()
        let locked = try MosquittoProcess(anonymous: false)
        defer { locked.stop() }
        let cases: [(arguments: [String], code: Int32, says: String)] = [
            (["inspect", "--broker", "mqtt://127.0.0.1:\(closedPort)"], 1, "127.0.0.1:\(closedPort)"),
            (["simulate", "--count", "1", "--broker", "mqtt://127.0.0.1:\(closedPort)"], 1, "127.0.0.1:\(closedPort)"),
            (["inspect", "--broker", "http://127.0.0.1:1883"], 2, "--broker"),
            (["inspect", "--broker", locked.url], 1, "refused"),
            (["send", "uno1", "LIG", "--broker", "mqtt://user:hunter2@127.0.0.1:\(locked.port)"], 1, "refused"),
            (["inspect", "--broker", "mqtts://127.0.0.1:\(locked.port)"], 1, "TLS"),
            (["inspect", "dtwin/#/up"], 2, "not an MQTT topic filter"),
            (["inspect", "--json", "--stats"], 2, "choose one of"),
            (["simulate", "--devices", "0"], 2, "--devices"),
            (["replay", "/nonexistent.jsonl"], 2, "cannot read"),
            (["replay", "x", "--speed", "fast"], 2, "--speed"),
        ]
        for item in cases {
            let result = try await DTwinBinary.run(item.arguments)
            #expect(result.code == item.code, "\(item.arguments): \(result.output)")
            #expect(result.output.contains(item.says), "\(item.arguments): \(result.output)")
            #expect(!result.output.contains("Fatal") && !result.output.contains("hunter2"), "\(item.arguments): \(result.output)")
            if item.code == 1 { #expect(result.output.split(separator: "\n").count == 1, "\(item.arguments): \(result.output)") }
        }
    }
}
