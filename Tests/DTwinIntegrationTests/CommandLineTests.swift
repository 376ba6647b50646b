import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Testing

/// The `dtwin` executable itself: signals, exit codes, messages people read.
@Suite struct CommandLineTests {
    func bridgeEnvironment(_ broker: MosquittoProcess, _ directory: URL) -> [String: String] {
        [
            "DTWIN_BROKER": broker.url, "DTWIN_STORE_PATH": directory.appendingPathComponent("twin.sqlite").path,
            "DTWIN_SPOOL_PATH": directory.appendingPathComponent("spool").path,
            "DTWIN_CLIENTID": "cli-bridge-\(UUID().uuidString.prefix(6))", "DTWIN_SHUTDOWNTIMEOUT": "5s",
            "DTWIN_HTTP_PORT": "0",
        ]
    }

    func temporaryDirectory() throws -> URL { try makeTemporaryFolder("dtwin-cli") }

    @Test func sigtermPublishesOfflineExitsZeroAndTheSpoolKeepsTheRest() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("bridge.log")
        let environment = bridgeEnvironment(broker, directory)
        let bridge = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"],
            environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: log.path)
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        #expect(await watcher.waitFor { $0.last?.payload == Array("online".utf8) })
        for n in 0..<50 {
            try await watcher.client.publish(topic: "dtwin/uno1/up", payload: Array("sim-uno1 data \(n)".utf8))
        }
        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        #expect(bridge.exitCode == 0)
        #expect(await watcher.waitFor { $0.last?.payload == Array("offline".utf8) })
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(output.contains("bridge stopped"))
        #expect(!output.contains("Fatal error"))
        // What was not stored before the signal waits in the spool: the next start stores it.
        let restarted = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"],
            environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: log.path)
        // Online means its signal handlers are in place; a SIGTERM before that ends it the
        // default way (the first bridge may have stored all 50 already, so the wait below can
        // be instant).
        #expect(await watcher.waitFor { $0.last?.payload == Array("online".utf8) })
        var lines: [Substring] = []
        _ = await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
            let readings = try? await DTwinBinary.run(["readings", "uno1", "--json", "--limit", "100"], environment: environment)
            lines = readings?.output.split(separator: "\n") ?? []
            return lines.count >= 50
        }
        #expect(lines.count == 50)
        // In the order they were published, also those stored in the same millisecond (ordered by
        // time, then by the bridge's monotonic ids).
        let values = lines.map { line in
            ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any])?["value"] as? Int ?? -1
        }
        #expect(values == Array(0..<50), "\(values)")
        restarted.signal(SIGTERM)
        #expect(await restarted.exited(within: .seconds(15)))
        #expect(restarted.exitCode == 0)
        await watcher.close()
    }

    /// A second `dtwin bridge` with the same configuration stops before it touches the broker:
    /// the running one keeps its session, its client id and its status.
    @Test func aSecondBridgeNeverHarmsTheFirst() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = bridgeEnvironment(broker, directory)
        let httpPort = try freeLoopbackPort()
        environment["DTWIN_HTTP_PORT"] = "\(httpPort)"
        let first = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"], environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 },
            outputFile: directory.appendingPathComponent("first.log").path)
        defer { first.signal(SIGKILL) }
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        #expect(await watcher.waitFor { $0.last?.payload == Array("online".utf8) })

        // The same spool: refused, saying which bridge holds it.
        let second = try await DTwinBinary.run(["bridge"], environment: environment)
        #expect(second.code == 1, "\(second.output)")
        #expect(second.output.contains("another dtwin bridge (clientId \(environment["DTWIN_CLIENTID"]!), spool "), "\(second.output)")
        // Its own spool but the same HTTP port: refused before connecting too.
        var elsewhere = environment
        elsewhere["DTWIN_SPOOL_PATH"] = directory.appendingPathComponent("spool-2").path
        let third = try await DTwinBinary.run(["bridge"], environment: elsewhere)
        #expect(third.code == 1 && third.output.contains("cannot listen on 127.0.0.1:\(httpPort)"), "\(third.output)")

        // The first was never disconnected, its status never changed, and it still works.
        #expect(!broker.log.contains("already connected"), "\(broker.log.suffix(1000))")
        #expect(watcher.messages.map(\.payload) == [Array("online".utf8)])
        #expect(first.isRunning)
        try await watcher.client.publish(topic: "dtwin/uno1/up", payload: Array("sim-uno1 data 7".utf8))
        #expect(
            await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
                (try? await DTwinBinary.run(["readings", "uno1", "--json"], environment: environment))?.output.contains("\"value\":7") == true
            })
        first.signal(SIGTERM)
        #expect(await first.exited(within: .seconds(15)))
        #expect(first.exitCode == 0)
        // Once it has stopped, the spool is free for the next one.
        let next = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"], environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 },
            outputFile: directory.appendingPathComponent("next.log").path)
        defer { next.signal(SIGKILL) }
        #expect(await watcher.waitFor { $0.last?.payload == Array("online".utf8) && $0.count >= 3 })
        next.signal(SIGTERM)
        #expect(await next.exited(within: .seconds(15)))
        await watcher.close()
    }

    @Test func sigkillLeavesTheLastWillOffline() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bridge = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge"],
            environment: DTwinBinary.cleanEnvironment.merging(bridgeEnvironment(broker, directory)) { $1 })
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        #expect(await watcher.waitFor { $0.last?.payload == Array("online".utf8) })
        bridge.signal(SIGKILL)
        #expect(await bridge.exited(within: .seconds(5)))
        #expect(await watcher.waitFor(timeout: .seconds(10)) { $0.last?.payload == Array("offline".utf8) })
        let retained = try await MessageCollector(port: broker.port, filters: ["dtwin/bridge/status"])
        #expect(await retained.waitFor { $0.first?.retain == true && $0.first?.payload == Array("offline".utf8) })
        await retained.close()
        await watcher.close()
    }

    @Test func configurationErrorsNameTheKeyAndExitTwo() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = try await DTwinBinary.run(["bridge"], environment: ["DTWIN_UPSTREAM_MODE": "kafka"])
        #expect(bad.code == 2)
        #expect(bad.output.contains("upstream.mode"))
        #expect(bad.output.contains("DTWIN_UPSTREAM_MODE"))
        #expect(!bad.output.contains("Fatal error"))
        let file = directory.appendingPathComponent("dtwin.yaml")
        try "upstream:\n  mode: apigw\n  urll: http://x\n".write(to: file, atomically: true, encoding: .utf8)
        let unknown = try await DTwinBinary.run(["bridge", "--config", file.path])
        #expect(unknown.code == 2)
        #expect(unknown.output.contains("upstream.urll: unknown key; did you mean upstream.url?"))
        let missing = try await DTwinBinary.run(["bridge", "--config", directory.appendingPathComponent("nope.yaml").path])
        #expect(missing.code == 2)
        #expect(missing.output.contains("does not exist"))
    }

    @Test func sendValidatesTheNameAndFailsFastWithoutABroker() async throws {
        let badName = try await DTwinBinary.run(["send", "a/#", "LIG"])
        #expect(badName.code == 2)
        #expect(badName.output.contains("invalid device name"))
        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        let noBroker = try await DTwinBinary.run(["send", "uno1", "LIG", "--broker", "mqtt://127.0.0.1:\(port)"])
        #expect(noBroker.code == 1)
        #expect(noBroker.output.contains("127.0.0.1:\(port)"))
        #expect(noBroker.output.contains("refused"))
        #expect(ContinuousClock.now - started < .seconds(10))
        let badURL = try await DTwinBinary.run(["send", "uno1", "LIG", "--broker", "http://x:pw@host"])
        #expect(badURL.code == 2)
        #expect(!badURL.output.contains("pw@"))
        // One rule for commands: what the API refuses with 400, send refuses as a usage error,
        // before touching any broker.
        for (command, words) in [
            ("", "the command is empty"), ("a\nb", "control characters"), (String(repeating: "L", count: 1025), "at most 1024 bytes"),
        ] {
            let refused = try await DTwinBinary.run(["send", "uno1", command, "--broker", "mqtt://127.0.0.1:\(port)"])
            #expect(refused.code == 2 && refused.output.contains(words), "\(command.prefix(8).debugDescription): \(refused.output)")
        }
        let noTime = try await DTwinBinary.run(["send", "uno1", "LIG", "--timeout", "0s", "--broker", "mqtt://127.0.0.1:\(port)"])
        #expect(noTime.code == 2 && noTime.output.contains("--timeout must be longer than 0"), "\(noTime.output)")
    }

    @Test func sendPublishesTheCommandOnDown() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let device = try await MessageCollector(port: broker.port, filters: ["dtwin/uno1/down"])
        let sent = try await DTwinBinary.run(["send", "uno1", "LIG", "--broker", broker.url])
        #expect(sent.code == 0)
        #expect(sent.output.contains("dtwin/uno1/down"))
        #expect(await device.waitFor { $0.map(\.payload) == [Array("LIG".utf8)] })
        await device.close()
    }

    @Test func eventPrintsTheProxyEventAndTheQuery() async throws {
        let event = try await DTwinBinary.run(["event", "uno1", "sim-uno1 data 512"])
        #expect(event.code == 0)
        let json = try #require(JSONSerialization.jsonObject(with: Data(event.output.utf8)) as? [String: Any])
        let query = try #require(json["queryStringParameters"] as? [String: String])
        #expect(query["SimUniqueName"] == "uno1")
        #expect(query["Payload"] == Data("sim-uno1 data 512".utf8).base64EncodedString())
        #expect(query["Topic"] == "dtwin/uno1/up")
        #expect(json["httpMethod"] as? String == "GET")
        let form = try await DTwinBinary.run(["event", "uno1", "AAEC", "--base64", "--format", "query"])
        let items = try #require(URLComponents(string: "http://x/?" + form.output.trimmingCharacters(in: .whitespacesAndNewlines))?.queryItems)
        #expect(items.first { $0.name == "Payload" }?.value == "AAEC")
        let test = try await DTwinBinary.run(["event", "--test"])
        #expect(try JSONDecoder().decode(ConsoleTestEvent.self, from: Data(test.output.utf8)) == .seed)
        let bad = try await DTwinBinary.run(["event", "bad name", "x"])
        #expect(bad.code == 2)
    }

    @Test func helpTeachesTheVerbs() async throws {
        let help = try await DTwinBinary.run(["--help"])
        #expect(help.code == 0)
        for verb in ["bridge", "inspect", "send", "simulate", "replay", "event", "readings", "sms"] { #expect(help.output.contains(verb)) }
        #expect(help.output.contains("DTWIN_UPSTREAM_URL"))
    }
}
