import AsyncHTTPClient
import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import DTwinTwilio
import Foundation
import NIOHTTP1
import Testing

/// The non-IoT API (README: "The HTTP API") over real HTTP, on a bridge with a real broker and store.
@Suite struct DeviceAPITests {
    /// Readings with their own times (`ts`, Unix ms): one a minute from this moment.
    static let start: Int64 = 1_764_000_000_000

    static func reading(_ n: Int) -> String { #"{"value": \#(n * 10), "ts": \#(start + Int64(n) * 60_000)}"# }

    static func iso(_ n: Int) -> String { Timestamp.iso8601(millis: start + Int64(n) * 60_000) }

    /// Publishes readings 1...count for `device` and waits until the API shows them all.
    static func store(_ count: Int, for device: String, _ harness: TwilioHarness) async throws {
        for n in 1...count { try await harness.bridge.publish("dtwin/\(device)/up", reading(n)) }
        let stored = await waitUntil {
            let answer = try? await harness.get("/api/devices/\(device)/readings?limit=1000")
            return (answer?.json["count"] as? Int) == count
        }
        #expect(stored, "the \(count) readings of \(device) were not stored")
    }

    static func values(_ answer: TwilioHarness.Answer) -> [Double] {
        (answer.json["items"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? Double }
    }

    @Test func devicesListsConfiguredSeenAndStoredDevices() async throws {
        let harness = try await TwilioHarness()
        try await Self.store(2, for: "a", harness)
        try await harness.bridge.publish("dtwin/a/status", "online")
        try await harness.bridge.publish("dtwin/c/up", "c:awake")
        #expect(await waitUntil { harness.bridge.application.bridge.registry.entry(DeviceName("c")!) != nil })
        #expect(await waitUntil { harness.bridge.application.bridge.deviceStatuses[DeviceName("a")!] == "online" })

        let answer = try await harness.get("/api/devices")
        #expect(answer.status == 200 && answer.contentType.hasPrefix("application/json"), "\(answer)")
        let devices = try #require(answer.json["devices"] as? [[String: Any]])
        #expect(devices.compactMap { $0["device"] as? String } == ["a", "b", "c", "uno"], "configured, seen and stored, sorted")
        let a = try #require(devices.first { $0["device"] as? String == "a" })
        #expect(a["status"] as? String == "online")
        #expect(a["storedItems"] as? Int == 2)
        let reading = try #require(a["lastReading"] as? [String: Any])
        #expect(reading["value"] as? Double == 20 && reading["at"] as? String == Self.iso(2), "\(reading)")
        #expect(a["lastSeen"] as? String != nil)
        let b = try #require(devices.first { $0["device"] as? String == "b" })
        #expect(b["lastSeen"] == nil && b["storedItems"] == nil, "configured, never heard from")
        #expect(devices.first { $0["device"] as? String == "uno" }?["cellular"] as? Bool == true)
        #expect(devices.first { $0["device"] as? String == "c" }?["storedItems"] as? Int == 1)
        await harness.stop()
    }

    @Test func readingsHonourSinceUntilAndLimitOldestFirst() async throws {
        let harness = try await TwilioHarness()
        try await Self.store(6, for: "a", harness)
        let all = try await harness.get("/api/devices/a/readings")
        #expect(all.status == 200)
        #expect(Self.values(all) == [10, 20, 30, 40, 50, 60])
        #expect(all.json["device"] as? String == "a")
        // The newest `limit`, still oldest first.
        #expect(Self.values(try await harness.get("/api/devices/a/readings?limit=2")) == [50, 60])
        // since is inclusive, until exclusive; ISO-8601 and Unix milliseconds both work.
        let range = try await harness.get("/api/devices/a/readings?since=\(Self.iso(2))&until=\(Self.start + 5 * 60_000)")
        #expect(Self.values(range) == [20, 30, 40], "\(range.body)")
        let items = range.json["items"] as? [[String: Any]] ?? []
        #expect(items.first?["kind"] as? String == "reading" && items.first?["ts"] as? String == Self.iso(2))
        #expect(all.json["hint"] == nil, "no hint when there are items")
        // An empty answer says why: an unknown device, or a range with nothing in it.
        let configured = try await harness.get("/api/devices/b/readings")
        #expect(Self.values(configured).isEmpty && configured.json["count"] as? Int == 0)
        #expect(configured.json["hint"] as? String == "b is known but has no items in the twin table yet", "\(configured.body)")
        let unknown = try await harness.get("/api/devices/nosuch/readings")
        let known = try #require((unknown.json["hint"] as? String)?.split(separator: ": ").last, "\(unknown.body)")
        #expect(unknown.json["hint"] as? String == #"no device "nosuch" is known; the devices are: \#(known)"#)
        #expect(known.split(separator: ", ").contains("a") && known.split(separator: ", ").contains("b"), "heard and configured")
        let outside = try await harness.get("/api/devices/a/readings?since=2030-01-01")
        #expect((outside.json["hint"] as? String)?.hasPrefix("a has items, the latest at \(Self.iso(6)), but none in this range") == true)
        await harness.stop()
    }

    @Test func commandsArePublishedOnTheDevicesDownTopic() async throws {
        let harness = try await TwilioHarness()
        let text = try await harness.api(.POST, "/api/devices/a/commands", body: "LIG\n", contentType: "text/plain")
        #expect(text.status == 200, "\(text)")
        #expect(text.json["route"] as? String == "mqtt" && text.json["topic"] as? String == "dtwin/a/down")
        let json = try await harness.api(.POST, "/api/devices/a/commands", body: #"{"command": "ACK"}"#, contentType: "application/json")
        #expect(json.status == 200 && json.json["command"] as? String == "ACK", "\(json)")
        #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG", "ACK"] })
        // A cellular device's command goes out as a Twilio IP command.
        let cellular = try await harness.api(.POST, "/api/devices/uno/commands", body: "LIG")
        #expect(cellular.status == 200 && cellular.json["route"] as? String == "ip-command", "\(cellular)")
        #expect(harness.twilio.ipCommands.map(\.payload) == ["LIG"])
        #expect(harness.downPayloads("uno").isEmpty)
        await harness.stop()
    }

    @Test func aCommandWhileTheBrokerIsDownIsAcceptedAsQueuedAndPublishedLater() async throws {
        let harness = try await TwilioHarness()
        let broker = harness.bridge.broker
        let device = try await DurableCommandTests.device("b", broker: broker)
        broker.stop()
        #expect(await waitUntil { !harness.bridge.application.bridge.brokerConnected })
        let queued = try await harness.api(.POST, "/api/devices/b/commands", body: "LIG")
        #expect(queued.status == 202, "\(queued)")
        #expect(queued.json["route"] as? String == "queued")
        #expect((queued.json["note"] as? String)?.contains("published as soon as it is back") == true)
        try broker.start()
        #expect(await device.waitFor(timeout: .seconds(20)) { _ in DurableCommandTests.received(device, "LIG") })
        await device.close()
        await harness.stop()
    }

    @Test func theTestEventGoesThroughTheConfiguredUpstream() async throws {
        let local = try await TwilioHarness()
        let answer = try await local.api(.POST, "/api/test-event")
        #expect(answer.status == 200, "\(answer)")
        #expect(answer.json["upstream"] as? String == "local" && answer.json["delivered"] as? Bool == true)
        await local.stop()

        let gateway = try await HTTPReceiver.start { request in
            request.query["testuser"] == "broken" ? .init(status: 500, body: "upstream trouble") : .init(body: "{}")
        }
        let apigw = try await TwilioHarness {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
        }
        let seed = try await apigw.api(.POST, "/api/test-event")
        #expect(seed.status == 200 && seed.json["upstream"] as? String == "apigw", "\(seed)")
        #expect(gateway.requests.last?.query["testuser"] == "kilroy" && gateway.requests.last?.query["isIOT"] == "False")
        let failing = try await apigw.api(
            .POST, "/api/test-event", body: #"{"testuser": "broken", "testdata": "1", "isIOT": "False"}"#, contentType: "application/json")
        #expect(failing.status == 502, "the upstream failed, not the caller")
        #expect(failing.json["delivered"] as? Bool == false)
        #expect((failing.json["error"] as? String)?.contains("upstream answered 500: upstream trouble") == true, "\(failing)")
        // With the cloud storing readings, this bridge has none to show, and says why.
        let readings = try await apigw.get("/api/devices/a/readings")
        #expect(readings.status == 501 && readings.error?.contains("set store.kind: dynamodb") == true, "\(readings)")
        await apigw.stop()
        await gateway.stop()
    }

    @Test func everyMistakeIsAJSON4xxThatSaysWhatToChange() async throws {
        let harness = try await TwilioHarness()
        let long = String(repeating: "x", count: 65)
        let backwards = "/api/devices/a/readings?since=" + Self.iso(3) + "&until=" + Self.iso(1)
        let cases: [(method: HTTPMethod, path: String, body: String?, status: Int, says: String)] = [
            (.GET, "/api/devices/a%2Fb/readings", nil, 400, "invalid device name \"a/b\": contains '/'"),
            (.GET, "/api/devices/%2B/readings", nil, 400, "contains '+'"),
            (.GET, "/api/devices/\(long)/readings", nil, 400, "longer than 64"),
            // The client sends a stray % as %25: the name arrives as "a%zz".
            (.GET, "/api/devices/a%zz/readings", nil, 400, "contains '%'"),
            (.GET, "/api/devices/a/readings?since=yesterday", nil, 400, "is not an ISO-8601 time"),
            (.GET, backwards, nil, 400, "since must be earlier than until"),
            (.GET, "/api/devices/a/readings?limit=0", nil, 400, "from 1 to 1000"),
            (.GET, "/api/devices/a/readings?limit=5000", nil, 400, "from 1 to 1000"),
            (.GET, "/api/devices/a/readings?limit=ten", nil, 400, "from 1 to 1000"),
            (.GET, "/api/devices/a/readings?limt=5", nil, 400, "unknown query parameter \"limt\""),
            (.GET, "/api/devices?since=1", nil, 400, "unknown query parameter \"since\": this route takes none"),
            (.POST, "/api/devices/a/commands", "", 400, "the command is empty"),
            (.POST, "/api/devices/a/commands", "  \n ", 400, "the command is empty"),
            (.POST, "/api/devices/a/commands", "LIG\nACK", 400, "control characters"),
            (.POST, "/api/devices/a/commands", "L\u{0}G", 400, "control characters"),
            (.POST, "/api/devices/a/commands", String(repeating: "A", count: 2000), 413, "at most 1024 bytes"),
            (.POST, "/api/devices/a%23/commands", "LIG", 400, "contains '#'"),
            (.POST, "/api/test-event", "not json", 400, "the body must be empty"),
            (.POST, "/api/test-event", #"{"testuser": 1}"#, 400, "the body must be empty"),
            (.GET, "/api/nothing-here", nil, 404, "no such API route"),
            (.GET, "/api", nil, 404, "no such API route"),
            (.DELETE, "/api/devices/a/readings", nil, 405, "takes GET only"),
            (.GET, "/api/devices/a/commands", nil, 405, "takes POST only"),
            (.GET, "/api/test-event", nil, 405, "takes POST only"),
            (.POST, "/api/devices", "x", 405, "takes GET only"),
            (.POST, "/api/devices/a/commands", String(repeating: "A", count: 70_000), 413, "over 65536 bytes"),
        ]
        for item in cases {
            let answer = try await harness.api(item.method, item.path, body: item.body)
            #expect(answer.status == item.status, "\(item.method) \(item.path): \(answer)")
            #expect(answer.contentType.hasPrefix("application/json"), "\(item.method) \(item.path): \(answer.contentType)")
            #expect(answer.error?.contains(item.says) == true, "\(item.method) \(item.path): \(answer.body)")
        }
        #expect(try await harness.api(.POST, "/api/devices", body: "x").allow == "GET")
        // The JSON command body must carry a string command.
        let wrongJSON = try await harness.api(.POST, "/api/devices/a/commands", body: #"{"cmd": "LIG"}"#, contentType: "application/json")
        #expect(wrongJSON.status == 400 && wrongJSON.error?.contains(#"a string "command""#) == true, "\(wrongJSON)")
        // Without the token, or with a wrong one, nothing under /api answers, not even its 404.
        for path in ["/api/devices", "/api/devices/a/readings", "/api/nothing-here"] {
            #expect(try await harness.get(path, bearer: nil).status == 401)
            #expect(try await harness.get(path, bearer: "wrong").status == 401)
        }
        #expect(try await harness.api(.POST, "/api/devices/a/commands", body: "LIG", bearer: nil).status == 401)
        #expect(harness.downPayloads("a").isEmpty, "no mistake above published anything")
        await harness.stop()

        let closed = try await TwilioHarness(apiToken: false)
        let refused = try await closed.api(.POST, "/api/devices/a/commands", body: "LIG", bearer: "anything")
        #expect(refused.status == 403 && refused.error?.contains("set DTWIN_API_TOKEN") == true, "\(refused)")
        await closed.stop()
    }

    @Test func metricsCountRequestsAndSMS() async throws {
        let harness = try await TwilioHarness()
        _ = try await harness.get("/api/devices")
        _ = try await harness.get("/api/devices", bearer: nil)
        _ = try await harness.get("/api/devices/a/readings")
        // A device asks for an SMS to its people (two numbers for a).
        try await harness.bridge.publish("dtwin/a/sms", "door open")
        #expect(await waitUntil { harness.twilio.messages.count == 2 })
        #expect(await waitUntil { harness.bridge.application.outbox.entries.allSatisfy { $0.state == .accepted } })
        let metrics = try await harness.get("/metrics", bearer: nil).body
        #expect(metrics.contains(#"dtwin_http_requests_total{route="/api/devices",method="GET",status="200"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"dtwin_http_requests_total{route="/api/devices",method="GET",status="401"} 1"#))
        #expect(metrics.contains(#"dtwin_http_requests_total{route="/api/devices/{device}/readings",method="GET",status="200"} 1"#))
        #expect(metrics.contains(#"dtwin_sms_total{result="accepted"} 2"#))
        #expect(metrics.contains(#"dtwin_sms_total{result="failed"} 0"#))
        await harness.stop()
    }
}
