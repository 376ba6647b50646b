import AsyncHTTPClient
import DTwinBridge
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import NIOHTTP1
import Testing

/// What an attacker on the network path or on the development broker tries, against the real
/// bridge binary on loopback (issue 18).
@Suite struct HardeningTests {
    static func smsParameters(sid: String, account: String = TwilioHarness.accountSid) -> [(String, String)] {
        [("MessageSid", sid), ("AccountSid", account), ("From", TwilioHarness.alice), ("To", "+15017122661"), ("Body", "@uno1 LIG")]
    }

    static func ipCommandParameters(sid: String) -> [(String, String)] {
        [
            ("Sid", sid), ("AccountSid", TwilioHarness.accountSid), ("SimUniqueName", "uno1"), ("Direction", "from_sim"),
            ("PayloadType", "binary"), ("Payload", Data("sim-uno1 data 77".utf8).base64EncodedString()), ("Status", "received"),
        ]
    }

    /// A signed SMS and a signed IP command, captured and replayed: in the same run and after a
    /// restart of the bridge, each acts once. A valid signature for another account acts never.
    @Test func aCapturedWebhookActsOnceEvenAfterARestart() async throws {
        let setup = try TwilioBridgeProcess("dtwin-replay")
        defer { setup.cleanUp() }
        let watcher = try await MessageCollector(port: setup.broker.port, filters: ["dtwin/uno1/down", "dtwin/bridge/ipcommand/#"])
        let sms = Self.smsParameters(sid: "SM" + String(repeating: "1", count: 32))
        let ipCommand = Self.ipCommandParameters(sid: "HG" + String(repeating: "2", count: 32))

        let first = try await setup.start()
        let sent = try await TwilioHarness.post(port: setup.port, "/twilio/sms", sms)
        #expect(sent.status == 200 && TwilioHarness.message(in: sent.body) == "Sent to uno1: LIG", "\(sent.body)")
        let received = try await TwilioHarness.post(port: setup.port, "/twilio/ipcommands", ipCommand)
        #expect(received.status == 200 && received.body.trimmingCharacters(in: .whitespacesAndNewlines) == "received", "\(received.body)")
        #expect(await watcher.waitFor { $0.count == 2 }, "one command down, one IP-command copy")
        let replayed = try await TwilioHarness.post(port: setup.port, "/twilio/sms", sms)
        #expect(replayed.status == 200 && TwilioHarness.message(in: replayed.body) == nil)
        first.process.signal(SIGTERM)
        #expect(await first.finish() == 0, "\(first.output)")

        let second = try await setup.start()
        let afterRestart = try await TwilioHarness.post(port: setup.port, "/twilio/sms", sms)
        #expect(afterRestart.status == 200 && TwilioHarness.message(in: afterRestart.body) == nil, "\(afterRestart.body)")
        let ipAfterRestart = try await TwilioHarness.post(port: setup.port, "/twilio/ipcommands", ipCommand)
        #expect(
            ipAfterRestart.status == 200 && ipAfterRestart.body.trimmingCharacters(in: .whitespacesAndNewlines) == "already received",
            "\(ipAfterRestart.body)")
        // Signed with this account's token, but for another account.
        let foreign = try await TwilioHarness.post(
            port: setup.port, "/twilio/sms",
            Self.smsParameters(sid: "SM" + String(repeating: "3", count: 32), account: "AC" + String(repeating: "f", count: 32)))
        #expect(foreign.status == 403 && foreign.body.contains("another Twilio account"), "\(foreign.body)")
        // A fresh SMS still acts: the ledger refuses repeats, not traffic.
        let fresh = try await TwilioHarness.post(port: setup.port, "/twilio/sms", Self.smsParameters(sid: "SM" + String(repeating: "4", count: 32)))
        #expect(TwilioHarness.message(in: fresh.body) == "Sent to uno1: LIG")
        #expect(await watcher.waitFor { $0.count == 3 })
        second.process.signal(SIGTERM)
        #expect(await second.finish() == 0, "\(second.output)")
        #expect(watcher.messages.map(\.topic) == ["dtwin/uno1/down", "dtwin/bridge/ipcommand/uno1", "dtwin/uno1/down"])
        let stored = try await DTwinBinary.run(["readings", "uno1", "--json"], environment: setup.environment)
        #expect(stored.output.split(separator: "\n").count == 1, "the IP command's reading is stored once: \(stored.output)")
        await watcher.close()
    }

    /// Outside input in the log is shown, never obeyed: control characters escaped, long values
    /// cut. Invented device names do not grow the bridge's memory. Someone else's `offline` on
    /// the bridge's status is put right at once.
    @Test func strangersCannotForgeLogsGrowMemoryOrMakeTheBridgeLookDown() async throws {
        let setup = try TwilioBridgeProcess("dtwin-strangers")
        defer { setup.cleanUp() }
        let bridge = try await setup.start(connected: true)
        let stranger = try await MessageCollector(port: setup.broker.port, filters: [])

        for (n, body) in ["@uno1\u{1B}[31mINJ8 LIG", "@uno1\u{0} LIG"].enumerated() {
            let parameters = [
                ("MessageSid", "SM\(n)" + String(repeating: "5", count: 31)), ("AccountSid", TwilioHarness.accountSid),
                ("From", TwilioHarness.alice), ("To", "+15017122661"), ("Body", body),
            ]
            #expect(try await TwilioHarness.post(port: setup.port, "/twilio/sms", parameters).status == 200)
        }
        let longTopic = "dtwin/" + String(repeating: "t", count: 60_000) + "/up"
        try await stranger.client.publish(topic: longTopic, payload: Array("x".utf8))
        try await stranger.client.publish(topic: "dtwin/bridge/status", payload: Array("offline".utf8), retain: true)
        let invented = DeviceRegistryLimit.capacity + 50
        for n in 0..<invented {
            try await stranger.client.publish(topic: "dtwin/inv\(n)/status", payload: Array("online".utf8), qos: .atMostOnce)
        }
        #expect(await waitUntil(timeout: .seconds(10)) { bridge.output.contains("someone else published the bridge's status") })
        // A new subscriber finds the bridge online again, not the stranger's offline.
        let observer = try await MessageCollector(port: setup.broker.port, filters: ["dtwin/bridge/status"])
        #expect(await observer.waitFor { $0.last.map { String(decoding: $0.payload, as: UTF8.self) } == "online" })
        await observer.close()

        var listed = 0
        #expect(
            await waitUntil(timeout: .seconds(15)) {
                let metrics = try? await TwilioHarness.execute(HTTPClientRequest(url: "http://127.0.0.1:\(setup.port)/metrics"))
                return metrics?.body.contains("dtwin_devices_forgotten_total 50") == true
            })
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(setup.port)/api/devices")
        request.headers.add(name: "Authorization", value: "Bearer listing-token")
        listed = (try await TwilioHarness.execute(request).json["devices"] as? [Any])?.count ?? -1
        #expect(listed == DeviceRegistryLimit.capacity + 1, "the configured uno1 and the newest \(DeviceRegistryLimit.capacity) others")

        bridge.process.signal(SIGTERM)
        #expect(await bridge.finish() == 0)
        let log = bridge.output
        #expect(!log.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{0}" }, "no raw ESC or NUL in the log")
        #expect(log.contains(#"\u{1B}[31mINJ8"#) && log.contains(#"\u{0}"#), "escaped, so still readable")
        let longest = log.split(separator: "\n").map(\.count).max() ?? 0
        #expect(longest < 4_500, "one line quotes at most 2,000 characters of a value: \(longest)")
        #expect(log.contains("more characters)"))
        await stranger.close()
    }

    /// 500 connections held open (silent, or a request head that never ends) do not keep
    /// `/healthz` waiting and are closed by the idle timeout, the bridge's open files back to
    /// where they were; half a body gets 408 and a closed connection; and a client in the middle
    /// of a body cannot hold up the bridge's exit.
    @Test func slowAndIdleClientsCannotHoldTheServer() async throws {
        let setup = try TwilioBridgeProcess("dtwin-slow")
        defer { setup.cleanUp() }
        let bridge = try await setup.start(connected: true)
        let pid = bridge.process.pid
        let baseline = openFileCount(pid: pid)

        var held: [RawConnection] = []
        for n in 0..<500 {
            let connection = try RawConnection(port: setup.port)
            if n % 2 == 1 { connection.send("GET /healthz HTTP/1.1\r\nHo") }
            held.append(connection)
        }
        #expect(await waitUntil(timeout: .seconds(10)) { openFileCount(pid: pid) >= baseline + 400 }, "the connections were accepted")
        let health = try await TwilioHarness.execute(HTTPClientRequest(url: "http://127.0.0.1:\(setup.port)/healthz"))
        #expect(health.status == 200, "/healthz answers while 500 connections are held")
        // Closed by the server after the idle timeout (15 s), not by us: every one reads its end.
        #expect(
            await waitUntil(timeout: .seconds(30), interval: .milliseconds(500)) { openFileCount(pid: pid) <= baseline + 2 },
            "open files: \(openFileCount(pid: pid)), baseline \(baseline)")
        #expect(held.prefix(20).allSatisfy { $0.readUntilClosed(timeout: .seconds(1)) != nil })
        held.removeAll()

        // HTTP/1.0 is answered in HTTP/1.0, and closed unless it asked for keep-alive.
        let old = try RawConnection(port: setup.port)
        old.send("GET /healthz HTTP/1.0\r\n\r\n")
        let oldAnswer = old.readUntilClosed(timeout: .seconds(5))
        #expect(oldAnswer?.hasPrefix("HTTP/1.0 200") == true && oldAnswer?.contains("Connection: close") == true, "\(oldAnswer ?? "still open")")
        let kept = try RawConnection(port: setup.port)
        kept.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        // The connection stays open, so this reads for the whole time: long enough for a loaded machine.
        let keptAnswer = kept.read(timeout: .seconds(3))
        #expect(keptAnswer.text.hasPrefix("HTTP/1.0 200") && keptAnswer.text.contains("Connection: keep-alive") && !keptAnswer.closed)

        let halfBody = try RawConnection(port: setup.port)
        halfBody.send(
            "POST /twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n12345678")
        let answer = halfBody.readUntilClosed(timeout: .seconds(15))
        #expect(answer?.hasPrefix("HTTP/1.1 408") == true && answer?.contains("Connection: close") == true, "\(answer ?? "still open")")

        // SIGTERM while a client is in the middle of a body: the bridge still stops in its
        // shutdownTimeout (3 s here), not after the body timeout or never.
        let stranger = try RawConnection(port: setup.port)
        stranger.send(
            "POST /twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nab")
        try await Task.sleep(for: .milliseconds(300))
        bridge.process.signal(SIGTERM)
        #expect(await bridge.process.exited(within: .seconds(4)), "the bridge waited for a stranger's body")
        #expect(bridge.process.exitCode == 0, "\(bridge.output)")
        #expect(stranger.readUntilClosed(timeout: .seconds(2))?.hasPrefix("HTTP/1.1 408") == true)
    }
}

/// The registry's default bound, as the bridge binary runs it.
enum DeviceRegistryLimit {
    static let capacity = DeviceRegistry.defaultCapacity
}
