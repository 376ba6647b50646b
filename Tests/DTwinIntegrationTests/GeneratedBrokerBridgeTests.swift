import AsyncHTTPClient
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The dtwin binary on a broker made by broker-config/setup.sh, with its ACL: every path on
/// which the bridge publishes (statuses, replies, dead letters, commands, IP-command copies)
/// and the IP-command webhook, which once answered 200 for readings the ACL then dropped.
@Suite struct GeneratedBrokerBridgeTests {
    static let authToken = "generated-broker-test-token"
    static let accountSid = "AC" + String(repeating: "ab", count: 16)
    static let publicURL = "https://gateway.example"

    @Test func everyPathThatPublishesWorksBehindTheGeneratedACL() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let password = try await generated.addDevice("uno1")
        let httpPort = try freeLoopbackPort()
        let running = try generated.startBridge([
            "DTWIN_HTTP_PORT": "\(httpPort)", "DTWIN_HTTP_PUBLICURL": Self.publicURL, "DTWIN_MAXPAYLOAD": "1KiB",
            "DTWIN_DEVICES": #"{"uno1": {"reply": "ACK"}, "cell1": {"cellular": true}}"#,
            "TWILIO_ACCOUNT_SID": Self.accountSid, "TWILIO_AUTH_TOKEN": Self.authToken, "DTWIN_API_TOKEN": "api-token",
            // No SMS leaves this test: Twilio's API is a closed port.
            "DTWIN_TWILIO_APIBASE": "http://127.0.0.1:9", "DTWIN_TWILIO_SUPERSIMBASE": "http://127.0.0.1:9",
        ])
        let (bridge, log, environment) = (running.process, running.log, running.environment)
        defer { bridge.signal(SIGKILL) }
        // An operator watching the bridge's own topics with the bridge's credentials.
        let operatorView = try await MessageCollector(configuration: try generated.bridge(), filters: ["dtwin/bridge/#"])
        #expect(await operatorView.waitFor { $0.contains { $0.topic == "dtwin/bridge/status" && $0.payload == Array("online".utf8) } })
        #expect(await waitUntil(timeout: .seconds(10)) { await Self.status(of: "/readyz", port: httpPort) == 200 })
        let device = try await MessageCollector(configuration: generated.device("uno1", password: password), filters: ["dtwin/uno1/down"])

        // A reading is answered: the local upstream's reply reaches the device.
        try await device.client.publish(topic: "dtwin/uno1/up", payload: Array("sim-uno1 data 512".utf8))
        #expect(await device.waitFor { $0.map(\.payload) == [Array("ACK".utf8)] }, "the reply never reached the device")

        // A payload over maxPayload is dead-lettered where the operator sees it.
        try await device.client.publish(topic: "dtwin/uno1/up", payload: Array(repeating: UInt8(ascii: "x"), count: 2048))
        #expect(await operatorView.waitFor { $0.contains { $0.topic == "dtwin/bridge/deadletter" } }, "no dead letter")

        // Twenty IP commands from a Super SIM: each answered 200, each stored once, each shown.
        for n in 1...20 {
            let answer = try await Self.ipCommand(sid: String(format: "HG%032d", n), device: "cell1", payload: "sim-cell1 data \(n)", port: httpPort)
            #expect(answer == 200)
        }
        var stored: [String] = []
        _ = await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
            let run = try? await DTwinBinary.run(["readings", "cell1", "--json", "--limit", "50"], environment: environment)
            stored = (run?.output ?? "").split(separator: "\n").map(String.init)
            return stored.count >= 20
        }
        #expect(stored.count == 20, "\(stored.count) of 20 IP commands reached the twin table")
        #expect(stored.allSatisfy { $0.contains(#""source":"twilio-ipcommand""#) })
        #expect(await operatorView.waitFor { $0.filter { $0.topic == "dtwin/bridge/ipcommand/cell1" }.count == 20 })

        // A command through the API reaches the device.
        #expect(await Self.command("LIG", device: "uno1", port: httpPort) == 200)
        #expect(await device.waitFor { $0.map(\.payload).contains(Array("LIG".utf8)) })

        // The ACL stops letting the bridge command devices: the refusal is logged and counted,
        // the command is kept, and it goes out once the ACL is mended.
        let acl = generated.directory.appendingPathComponent("acl")
        let original = try String(contentsOf: acl, encoding: .utf8)
        try original.replacingOccurrences(of: "topic write dtwin/+/down\n", with: "").write(to: acl, atomically: true, encoding: .utf8)
        kill(generated.broker.pid, SIGHUP)
        // mosquitto reloads on SIGHUP in its own time: wait until the bridge's user is refused.
        #expect(await waitUntil(timeout: .seconds(10)) { await Self.refused(operatorView.client, topic: "dtwin/nobody/down") })
        // 202: queued, not yet acknowledged by the broker (the API waits 3 s for the PUBACK).
        #expect(await Self.command("LED ON", device: "uno1", port: httpPort) == 202)
        #expect(await waitUntil(timeout: .seconds(10)) { await Self.metric("dtwin_publishes_refused_total", port: httpPort) >= 1 })
        let refusedLog = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(refusedLog.contains("the broker refused a publish") && refusedLog.contains("Not authorized"), "\(refusedLog.suffix(2000))")
        #expect(!device.messages.map(\.payload).contains(Array("LED ON".utf8)))
        // dtwin send says so too, instead of "sent".
        let refusedSend = try await DTwinBinary.run(["send", "uno1", "READ", "--broker", try generated.bridgeURL])
        #expect(refusedSend.code == 1 && refusedSend.output.contains("refused the publish"), "\(refusedSend.output)")
        try original.write(to: acl, atomically: true, encoding: .utf8)
        kill(generated.broker.pid, SIGHUP)
        #expect(await device.waitFor(timeout: .seconds(15)) { $0.map(\.payload).contains(Array("LED ON".utf8)) }, "the kept command never went out")

        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        #expect(bridge.exitCode == 0)
        #expect(await operatorView.waitFor { $0.last(where: { $0.topic == "dtwin/bridge/status" })?.payload == Array("offline".utf8) })
        await device.close()
        await operatorView.close()
    }

    /// The twin topics behind the generated ACL: the operator (operator.env) asks for a desired
    /// state on `state/set`, the bridge commands the device and publishes the document
    /// (retained) and refusals; the device reads its own document but may neither ask for a
    /// desired state nor write the document.
    @Test func theTwinTopicsWorkBehindTheGeneratedACL() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let password = try await generated.addDevice("uno1")
        let running = try generated.startBridge()
        defer { running.process.signal(SIGKILL) }
        let watcher = try await MessageCollector(
            configuration: try generated.operatorConnection(), filters: ["dtwin/bridge/status", "dtwin/uno1/state/#", "dtwin/uno1/state"])
        #expect(await watcher.waitFor { $0.contains { $0.topic == "dtwin/bridge/status" && $0.payload == Array("online".utf8) } })
        let device = try await MessageCollector(
            configuration: generated.device("uno1", password: password), filters: ["dtwin/uno1/down", "dtwin/uno1/state"])
        func documents(_ collector: MessageCollector) -> [TwinDocument] {
            collector.messages(on: "dtwin/uno1/state").compactMap { try? JSONDecoder().decode(TwinDocument.self, from: Data($0.payload)) }
        }
        try await device.client.publish(topic: "dtwin/uno1/status", payload: Array("online".utf8), retain: true)
        #expect(await watcher.waitFor { _ in documents(watcher).last?.reported["online"] == .bool(true) }, "\(running.logText.suffix(2000))")

        try await watcher.client.publish(topic: "dtwin/uno1/state/set", payload: Array(#"{"desired": {"led": true}}"#.utf8))
        #expect(await device.waitFor { $0.filter { $0.topic == "dtwin/uno1/down" }.map(\.payload) == [Array("LIG".utf8)] })
        #expect(await device.waitFor { _ in documents(device).last?.pending["led"] != nil }, "the device reads its own document")
        try await watcher.client.publish(topic: "dtwin/uno1/state/set", payload: Array(#"{"desired": {"led": false}, "version": 0}"#.utf8))
        #expect(await watcher.waitFor { $0.contains { $0.topic == "dtwin/uno1/state/rejected" } }, "the refusal is let through")

        // The device may not set what is wanted of it, nor write the document.
        #expect(await Self.refused(device.client, topic: "dtwin/uno1/state/set"))
        #expect(await Self.refused(device.client, topic: "dtwin/uno1/state"))
        // Its report closes the delta.
        try await device.client.publish(topic: "dtwin/uno1/up", payload: Array(#"{"value": 300, "led": true}"#.utf8))
        #expect(await watcher.waitFor { _ in documents(watcher).last.map { $0.delta.isEmpty && $0.reported["value"] == .number(300) } == true })
        #expect(documents(watcher).last?.desired == ["led": .bool(true)])
        #expect(device.messages.filter { $0.topic == "dtwin/uno1/down" }.count == 1)
        running.process.signal(SIGTERM)
        #expect(await running.process.exited(within: .seconds(15)))
        await device.close()
        await watcher.close()
    }

    /// Two instances of a shared-subscription group behind the generated ACL (README: "Several
    /// instances"): their `$share/…` subscriptions are granted, each announces itself on its own
    /// status topic and keeps the group's `online`, readings from a TLS device are answered and
    /// stored whichever instance takes them, and one instance's death leaves the bridge up.
    @Test func aGroupOfInstancesWorksBehindTheGeneratedACL() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let password = try await generated.addDevice("uno1")
        let watcher = try await MessageCollector(
            configuration: try generated.operatorConnection(), filters: ["dtwin/bridge/status", "dtwin/bridge/status/+"])
        func said(_ topic: String) -> [String] { watcher.messages(on: topic).map { String(decoding: $0.payload, as: UTF8.self) } }
        var instances: [String: GeneratedBroker.RunningBridge] = [:]
        for name in ["gw-a", "gw-b"] {
            instances[name] = try generated.startBridge([
                "DTWIN_INSTANCE": name, "DTWIN_SHAREDGROUP": "dtwin", "DTWIN_DEVICES": #"{"uno1": {"reply": "ACK"}}"#,
            ])
        }
        defer { for running in instances.values { running.process.signal(SIGKILL) } }
        // Generous bounds: two debug-built bridges start while the whole suite runs on two cores.
        #expect(
            await watcher.waitFor(timeout: .seconds(30)) { _ in
                said("dtwin/bridge/status/gw-a").last == "online" && said("dtwin/bridge/status/gw-b").last == "online"
            })
        #expect(await watcher.waitFor(timeout: .seconds(30)) { _ in said("dtwin/bridge/status").last == "online" })

        let device = try await MessageCollector(configuration: generated.device("uno1", password: password), filters: ["dtwin/uno1/down"])
        for n in 1...20 { try await device.client.publish(topic: "dtwin/uno1/up", payload: Array("sim-uno1 data \(n)".utf8)) }
        #expect(await device.waitFor(timeout: .seconds(20)) { $0.count >= 20 }, "\(device.messages.count) of 20 replies")
        let environment = instances["gw-a"]!.environment
        var stored = 0
        _ = await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
            let run = try? await DTwinBinary.run(["readings", "uno1", "--json", "--limit", "50"], environment: environment)
            stored = (run?.output ?? "").split(separator: "\n").count
            return stored >= 20
        }
        #expect(stored == 20, "\(stored) of 20 readings in the twin table")
        for running in instances.values {
            #expect(
                !running.logText.contains("subscription refused") && !running.logText.contains("refused a publish"), "\(running.logText.suffix(1500))"
            )
        }

        // One instance dies: its will goes to its own topic; the bridge stays up.
        instances["gw-a"]!.process.signal(SIGKILL)
        #expect(await watcher.waitFor(timeout: .seconds(30)) { _ in said("dtwin/bridge/status/gw-a").last == "offline" })
        #expect(!said("dtwin/bridge/status").contains("offline"), "one instance's death is not the bridge's: \(said("dtwin/bridge/status"))")
        // gw-b hears gw-a's will too (and says so) before it is stopped: only then is it the last.
        let gwB = instances["gw-b"]!
        #expect(
            await waitUntil(timeout: .seconds(30)) {
                gwB.logText.split(separator: "\n").contains {
                    $0.contains("instance=gw-a") && $0.contains("another instance of the group is offline")
                }
            }, "\(gwB.logText.suffix(1500))")
        // The last one to stop says the bridge is offline.
        instances["gw-b"]!.process.signal(SIGTERM)
        #expect(await instances["gw-b"]!.process.exited(within: .seconds(15)))
        #expect(await watcher.waitFor(timeout: .seconds(30)) { _ in said("dtwin/bridge/status").last == "offline" })
        await device.close()
        await watcher.close()
    }

    /// Whether the broker now refuses `client`'s publish on `topic` (MQTT 5 reason code).
    static func refused(_ client: MQTTClient, topic: String) async -> Bool {
        do {
            try await client.publish(topic: topic, payload: Array("probe".utf8))
            return false
        } catch {
            return (error as? MQTTError)?.code == .publishRefused
        }
    }

    // MARK: HTTP, as Twilio and a person would call it

    static func ipCommand(sid: String, device: String, payload: String, port: Int) async throws -> Int {
        let parameters = [
            ("Sid", sid), ("AccountSid", accountSid), ("SimSid", "HS" + String(repeating: "0", count: 32)), ("SimUniqueName", device),
            ("Status", "received"), ("Direction", "from_sim"), ("PayloadType", "binary"),
            ("Payload", Data(payload.utf8).base64EncodedString()), ("DevicePort", "6969"),
        ]
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/twilio/ipcommands")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(
            name: "X-Twilio-Signature",
            value: TwilioWebhookSigner.signature(url: publicURL + "/twilio/ipcommands", parameters: parameters, authToken: authToken))
        request.body = .bytes(ByteBuffer(string: TwilioWebhookSigner.formBody(parameters)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        return Int(response.status.code)
    }

    static func command(_ text: String, device: String, port: Int) async -> Int {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/devices/\(device)/commands")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer api-token")
        request.headers.add(name: "Content-Type", value: "text/plain")
        request.body = .bytes(ByteBuffer(string: text))
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)) else { return 0 }
        return Int(response.status.code)
    }

    static func status(of path: String, port: Int) async -> Int {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)) else { return 0 }
        return Int(response.status.code)
    }

    /// A counter's value in `/metrics` (0 when absent).
    static func metric(_ name: String, port: Int) async -> Double {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(5)),
            let body = try? await response.body.collect(upTo: 1 << 20)
        else { return 0 }
        let line = String(buffer: body).split(separator: "\n").first { $0.hasPrefix(name) }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
    }
}
