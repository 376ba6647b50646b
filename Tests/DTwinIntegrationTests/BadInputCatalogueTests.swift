import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinStore
import DTwinTestSupport
import Foundation
import Testing

/// Every malformed thing we could think of, at every entry point (MQTT topics and payloads,
/// the webhooks, the API, raw HTTP, the configuration), thrown at one running bridge while a
/// device streams numbered readings. Each bad input gets its clear answer; the bridge stays up
/// and every good reading is stored. (Bad *upstream answers* have their own tests in
/// `BridgeDeliveryTests`: redirects, huge bodies, non-JSON.)
@Suite struct BadInputCatalogueTests {
    enum Fate: Equatable {
        /// Published on the dead letter topic with a reason containing this text.
        case deadLetter(String)
        /// Stored for `uno3` (kept raw, with a note where it is not a reading).
        case stored
        /// Logged and dropped: not a device message.
        case ignored
    }

    /// Room for the deeply nested JSON below.
    static let maxPayload = 4096

    /// (topic, payload, retain, fate)
    static let mqttCatalogue: [(String, [UInt8], Bool, Fate)] = [
        ("dtwin/no.dots/up", Array("x".utf8), false, .deadLetter("invalid device name")),
        ("dtwin/\(String(repeating: "a", count: 300))/up", Array("x".utf8), false, .deadLetter("longer than 64")),
        ("dtwin/uno2/up", [UInt8](repeating: 0x41, count: maxPayload + 1), false, .deadLetter("over the limit")),
        ("dtwin/uno1/up/extra", Array("sim-uno1 data 5".utf8), false, .ignored),
        ("other/uno1/up", Array("sim-uno1 data 5".utf8), false, .ignored),
        ("dtwin//up", Array("x".utf8), false, .deadLetter("is empty")),
        ("dtwin/uno1/UP", Array("x".utf8), false, .ignored),
        ("dtwin/uno1/sms", [0xFF, 0xFE], false, .ignored),
        // Live, the broker clears the retain flag: relayed, but uno1 has no phones to text.
        ("dtwin/uno1/sms", Array("retained text".utf8), true, .ignored),
        ("dtwin/uno1/status", [UInt8](repeating: 0x7A, count: 10_000), false, .ignored),
        // A device forging the bridge's own topics: no loop, no second dead letter.
        ("dtwin/bridge/deadletter", Array("{}".utf8), false, .ignored),
        ("dtwin/bridge/status", Array("offline".utf8), false, .ignored),
        ("dtwin/uno3/up", [], false, .stored),
        ("dtwin/uno3/up", [0x00, 0xFF, 0xC3, 0x28], false, .stored),
        ("dtwin/uno3/up", Array("sim-uno3 data ".utf8), false, .stored),
        ("dtwin/uno3/up", Array("sim-uno3 data 12abc".utf8), false, .stored),
        ("dtwin/uno3/up", Array(#"{"value":"#.utf8), false, .stored),
        ("dtwin/uno3/up", Array(#"{"value":"abc"}"#.utf8), false, .stored),
        ("dtwin/uno3/up", Array(#"{"value":1e400}"#.utf8), false, .stored),
        ("dtwin/uno3/up", Array(#"{"value":NaN}"#.utf8), false, .stored),
        ("dtwin/uno3/up", Array(#"{"value":5,"ts":"not a time"}"#.utf8), false, .stored),
        (
            "dtwin/uno3/up", Array((#"{"value":"# + String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000) + "}").utf8), false,
            .stored
        ),
        ("dtwin/uno3/up", Array(String(repeating: "\u{2028}\u{FEFF}", count: 100).utf8), false, .stored),
    ]

    /// Config texts that must be refused, each with a word its error must contain.
    static let configCatalogue: [(String, String)] = [
        ("broker: [unclosed", "YAML"),
        ("broker: http://127.0.0.1:1883", "broker"),
        ("upstream:\n  mode: carrier-pigeon", "upstream.mode"),
        ("spool:\n  maxBytes: -5", "spool.maxBytes"),
        ("devices:\n  no.dots: {}", "no.dots"),
        ("maxPayload: lots", "maxPayload"),
        ("shutdownTimeout: 10 fortnights", "shutdownTimeout"),
        ("brokr: mqtt://127.0.0.1", "brokr"),
        ("- just\n- a\n- list", "mapping"),
    ]

    @Test func everyEntryPointRefusesBadInputClearlyAndLosesNothingElse() async throws {
        let harness = try await TwilioHarness { $0.maxPayload = Self.maxPayload }
        let bridge = harness.bridge
        let readings = 200
        // The good traffic, flowing the whole time.
        let stream = Task {
            for n in 0..<readings {
                try await bridge.publish("dtwin/uno1/up", "sim-uno1 data \(n)")
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        var answers: [(String, Int)] = []

        // MQTT: topics and payloads.
        for (topic, payload, retain, _) in Self.mqttCatalogue {
            try await bridge.watcher.client.publish(topic: topic, payload: payload, qos: .atLeastOnce, retain: retain)
        }

        // Webhooks and the API: every case of BadInputCaseTests, here while readings stream.
        for bad in BadInputCaseTests.httpCases {
            let answer = try await bad.send(harness)
            answers.append((bad.name, answer.status))
            if answer.contentType.hasPrefix("application/json") { #expect(answer.error != nil, "\(bad.name): not a JSON error: \(answer.body)") }
        }
        // Signed and well-formed, but asking for things that must not happen: a polite 200 each.
        var politeRefusals: [String] = []
        for body in ["@a/# X", "@+ X", "@nobody LIG", "\u{0}\u{1}\u{7F}", "", String(repeating: "@", count: 1000)] {
            let answer = try await harness.sms(body)
            answers.append(("SMS \(body.prefix(20).debugDescription)", answer.status))
            politeRefusals.append(TwilioHarness.message(in: answer.body) ?? "")
        }
        answers.append(("SMS from a stranger", try await harness.sms("@a LIG", from: TwilioHarness.stranger).status))

        // A stray % that a client library would have escaped.
        let badEscape = try rawHTTP(
            port: harness.port,
            "GET /api/devices/a%zz/readings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(TwilioHarness.apiToken)\r\nConnection: close\r\n\r\n"
        )
        answers.append(("API: bad percent-encoding in the path", Int(badEscape.dropFirst(9).prefix(3)) ?? 0))
        #expect(badEscape.contains("not valid percent-encoding"), "\(badEscape)")
        let garbage = try rawHTTP(port: harness.port, "\u{16}\u{03}\u{01}NOT HTTP AT ALL\r\n\r\n")
        #expect(garbage.isEmpty || garbage.hasPrefix("HTTP/1.1 400"), "answer to garbage: \(garbage.prefix(80).debugDescription)")

        // The configuration (each case of configCatalogue is BadInputCaseTests'), and a bad variable.
        do {
            _ = try ConfigurationLoader.load(yaml: nil, source: nil, environment: ["DTWIN_UPSTREAM_CONCURRENCY": "0"])
            Issue.record("accepted DTWIN_UPSTREAM_CONCURRENCY=0")
        } catch {
            #expect(error.description.contains("DTWIN_UPSTREAM_CONCURRENCY"))
        }

        try await stream.value

        // Every bad input got a 4xx (or a polite 200), never a 5xx.
        let expected = Dictionary(uniqueKeysWithValues: BadInputCaseTests.httpCases.map { ($0.name, $0.status) })
            .merging(["API: bad percent-encoding in the path": 400]) { $1 }
        for (what, status) in answers {
            #expect(status < 500, "\(what): \(status)")
            if let want = expected[what] { #expect(status == want, "\(what)") }
        }
        #expect(politeRefusals.allSatisfy { !$0.isEmpty && !$0.hasPrefix("Sent") }, "\(politeRefusals)")

        // Every good reading is stored; the bad ones went where the catalogue says.
        let store = try BridgeApplication.openStore(bridge.configuration)
        func values(_ device: String) async -> [TwinItem] {
            (try? await store.items(device: DeviceName(device)!, since: nil, until: nil, limit: 10_000)) ?? []
        }
        let storedCount = Self.mqttCatalogue.filter { $0.3 == .stored }.count
        let allStored = await waitUntil(timeout: .seconds(20)) {
            let uno1 = await values("uno1").count
            let uno3 = await values("uno3").count
            return uno1 >= readings && uno3 >= storedCount
        }
        #expect(allStored)
        let uno1 = Set(await values("uno1").compactMap { $0.value.map { Int($0) } })
        #expect(uno1 == Set(0..<readings), "missing: \(Set(0..<readings).subtracting(uno1).sorted().prefix(20))")
        #expect(await values("uno3").count == storedCount)
        try await store.close()
        let reasons = Self.mqttCatalogue.compactMap { entry -> String? in
            if case .deadLetter(let reason) = entry.3 { return reason }
            return nil
        }
        // A last bad message as a marker: intake dead letters leave in arrival order, so once the
        // marker's has arrived, every earlier one has, and no other may follow.
        try await bridge.publish("dtwin/end.marker/up", "x")
        #expect(await bridge.watcher.waitFor { _ in bridge.deadLetters.contains { $0.topic == "dtwin/end.marker/up" } })
        #expect(bridge.deadLetters.dropLast().count == reasons.count, "\(bridge.deadLetters.map(\.reason))")
        #expect(bridge.deadLetters.last?.topic == "dtwin/end.marker/up")
        for reason in reasons {
            #expect(bridge.deadLetters.contains { $0.reason.contains(reason) }, "no dead letter saying \(reason)")
        }
        // Nothing reached a device, the bridge is up and answers, and nothing was lost.
        #expect(bridge.watcher.messages.filter { $0.topic.hasSuffix("/down") }.isEmpty)
        #expect(bridge.application.bridge.brokerConnected)
        #expect(try await harness.get("/healthz", bearer: nil).status == 200)
        #expect(bridge.application.bridge.counters.snapshot.lost == 0)
        await harness.stop()
    }

    /// Sends `text` over a plain TCP connection to 127.0.0.1:`port`; returns what comes back
    /// before the server closes or a second passes.
    /// The answer to `text`, read until the server closes the connection (each request here asks
    /// for that, or is not HTTP at all); the bound is for a server that never answers. It was
    /// 1 s, and on a loaded CI machine an answer once took longer: the test read nothing.
    func rawHTTP(port: Int, _ text: String) throws -> String {
        let connection = try RawConnection(port: port)
        connection.send(text)
        return connection.read(timeout: .seconds(10)).text
    }
}
