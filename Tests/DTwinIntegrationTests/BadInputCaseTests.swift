import DTwinApp
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinStore
import DTwinTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The bad-input catalogue one case at a time, each against its own bridge, so a failure names
/// its case. (``BadInputCatalogueTests`` throws all of them at one bridge at once while readings
/// stream, and checks that nothing else is lost.) The cases run one at a time: fifty brokers and
/// bridges starting at once on two cores would test the machine, not the bridge.
@Suite(.serialized) struct BadInputCaseTests {
    // MARK: configuration

    @Test(arguments: BadInputCatalogueTests.configCatalogue.map { ConfigCase(yaml: $0.0, word: $0.1) })
    func aBadConfigurationIsRefusedNamingWhatIsWrong(_ bad: ConfigCase) {
        do {
            _ = try ConfigurationLoader.load(yaml: bad.yaml, source: "bad.yaml", environment: [:])
            Issue.record("accepted bad configuration \(bad.yaml.debugDescription)")
        } catch {
            #expect(error.description.contains(bad.word), "\(error)")
        }
    }

    struct ConfigCase: Sendable, CustomTestStringConvertible {
        var yaml: String
        var word: String
        var testDescription: String { yaml.debugDescription }
    }

    // MARK: MQTT

    struct MQTTCase: Sendable, CustomTestStringConvertible {
        var topic: String
        var payload: [UInt8]
        var retain: Bool
        var fate: BadInputCatalogueTests.Fate
        var testDescription: String {
            let shown = String(decoding: payload.prefix(24), as: UTF8.self).debugDescription
            return "\(topic.prefix(40)) \(shown)\(payload.count > 24 ? "… (\(payload.count) bytes)" : "")\(retain ? " retained" : "")"
        }
    }

    @Test(arguments: BadInputCatalogueTests.mqttCatalogue.map { MQTTCase(topic: $0.0, payload: $0.1, retain: $0.2, fate: $0.3) })
    func anMQTTMistakeMeetsItsFate(_ bad: MQTTCase) async throws {
        let bridge = try await BridgeHarness { $0.maxPayload = BadInputCatalogueTests.maxPayload }
        try await bridge.watcher.client.publish(topic: bad.topic, payload: bad.payload, qos: .atLeastOnce, retain: bad.retain)
        // A last bad message as a marker: intake dead letters leave in arrival order.
        try await bridge.publish("dtwin/end.marker/up", "x")
        #expect(await bridge.watcher.waitFor { _ in bridge.deadLetters.contains { $0.topic == "dtwin/end.marker/up" } })
        let before = bridge.deadLetters.dropLast()
        switch bad.fate {
        case .deadLetter(let reason):
            #expect(before.count == 1 && before.first?.reason.contains(reason) == true, "\(before.map(\.reason))")
        case .stored:
            #expect(before.isEmpty, "\(before.map(\.reason))")
            let store = try BridgeApplication.openStore(bridge.configuration)
            #expect(
                await waitUntil { ((try? await store.items(device: DeviceName("uno3")!, since: nil, until: nil, limit: 5)) ?? []).count == 1 })
            try await store.close()
        case .ignored:
            #expect(before.isEmpty, "\(before.map(\.reason))")
        }
        #expect(bridge.watcher.messages.filter { $0.topic.hasSuffix("/down") }.isEmpty)
        #expect(try await bridge.get("/healthz").status == 200)
        await bridge.stop()
    }

    // MARK: webhooks and the API

    struct HTTPCase: Sendable, CustomTestStringConvertible {
        var name: String
        var status: Int
        var send: @Sendable (TwilioHarness) async throws -> TwilioHarness.Answer
        var testDescription: String { name }
    }

    static let form = [("MessageSid", "SMbad1"), ("From", TwilioHarness.alice), ("Body", "@a LIG")]

    static let httpCases: [HTTPCase] = [
        HTTPCase(name: "unsigned SMS", status: 403) { try await $0.post("/twilio/sms", form, token: nil) },
        HTTPCase(name: "wrongly signed SMS", status: 403) { try await $0.post("/twilio/sms", form, token: "not-the-token") },
        HTTPCase(name: "SMS without MessageSid", status: 400) { try await $0.post("/twilio/sms", [("From", TwilioHarness.alice)]) },
        HTTPCase(name: "bad percent-encoding", status: 400) { try await $0.post("/twilio/sms", [], body: "Body=%zz") },
        HTTPCase(name: "JSON instead of a form", status: 415) {
            try await $0.post("/twilio/sms", [], contentType: "application/json", body: "{}")
        },
        HTTPCase(name: "70 kB SMS", status: 413) { try await $0.sms("@a " + String(repeating: "x", count: 70_000)) },
        HTTPCase(name: "status without fields", status: 400) { try await $0.post("/twilio/status", [("AccountSid", TwilioHarness.accountSid)]) },
        HTTPCase(name: "IP command without a SIM name", status: 400) { try await $0.post("/twilio/ipcommands", [("Sid", "HGbad1")]) },
        HTTPCase(name: "IP command from a badly named SIM", status: 400) {
            try await $0.post("/twilio/ipcommands", [("Sid", "HGbad2"), ("SimUniqueName", "no.dots"), ("Payload", "eA==")])
        },
        HTTPCase(name: "IP command that is not base64", status: 400) {
            try await $0.post("/twilio/ipcommands", [("Sid", "HGbad3"), ("SimUniqueName", "uno"), ("Direction", "from_sim"), ("Payload", "%%%")])
        },
        HTTPCase(name: "API without a token", status: 401) { try await $0.get("/api/outbox", bearer: nil) },
        HTTPCase(name: "API with a wrong token", status: 401) { try await $0.get("/api/outbox", bearer: "guess") },
        HTTPCase(name: "unknown path", status: 404) { try await $0.get("/../../etc/passwd") },
        HTTPCase(name: "GET on a webhook", status: 404) { try await $0.get("/twilio/sms") },
        HTTPCase(name: "API: readings of a bad name", status: 400) { try await $0.api(.GET, "/api/devices/a%2F%23/readings") },
        HTTPCase(name: "API: readings since nonsense", status: 400) { try await $0.api(.GET, "/api/devices/uno1/readings?since=soon") },
        HTTPCase(name: "API: readings limit 0", status: 400) { try await $0.api(.GET, "/api/devices/uno1/readings?limit=0") },
        HTTPCase(name: "API: devices with a query", status: 400) { try await $0.api(.GET, "/api/devices?all=1") },
        HTTPCase(name: "API: empty command", status: 400) { try await $0.api(.POST, "/api/devices/a/commands", body: "") },
        HTTPCase(name: "API: command with a newline", status: 400) { try await $0.api(.POST, "/api/devices/a/commands", body: "LIG\n#") },
        HTTPCase(name: "API: command to a wildcard", status: 400) { try await $0.api(.POST, "/api/devices/%2B/commands", body: "LIG") },
        HTTPCase(name: "API: 2 kB command", status: 413) {
            try await $0.api(.POST, "/api/devices/a/commands", body: String(repeating: "L", count: 2048))
        },
        HTTPCase(name: "API: test event that is not JSON", status: 400) { try await $0.api(.POST, "/api/test-event", body: "{") },
        HTTPCase(name: "API: GET a command", status: 405) { try await $0.api(.GET, "/api/devices/a/commands") },
        HTTPCase(name: "API: unknown route", status: 404) { try await $0.api(.GET, "/api/everything") },
    ]

    @Test(arguments: httpCases)
    func anHTTPMistakeGetsItsAnswerAndChangesNothing(_ bad: HTTPCase) async throws {
        let harness = try await TwilioHarness()
        let answer = try await bad.send(harness)
        #expect(answer.status == bad.status, "\(answer.body.prefix(300))")
        if answer.contentType.hasPrefix("application/json") { #expect(answer.error != nil, "not a JSON error: \(answer.body)") }
        // Nothing reached a device, nobody was texted.
        #expect(harness.bridge.watcher.messages.filter { $0.topic.hasSuffix("/down") }.isEmpty)
        #expect(harness.twilio.messages.isEmpty)
        await harness.stop()
    }
}
