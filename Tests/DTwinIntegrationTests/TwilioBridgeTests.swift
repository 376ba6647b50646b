import DTwinApp
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinHTTP
import DTwinMQTT
import DTwinStore
import DTwinTestSupport
import DTwinTwilio
import Foundation
import Testing

/// The Twilio half of the bridge against a real broker, real HTTP and a local Twilio-contract
/// server: webhooks in, SMS and IP commands out.
@Suite struct TwilioBridgeTests {
    func withHarness(
        credentials: Bool = true, apiToken: Bool = true, configure: (inout DTwinConfiguration) -> Void = { _ in },
        _ body: (TwilioHarness) async throws -> Void
    ) async throws {
        let harness = try await TwilioHarness(credentials: credentials, apiToken: apiToken, configure: configure)
        do {
            try await body(harness)
        } catch {
            Issue.record("\(error)")
        }
        await harness.stop()
    }

    // MARK: inbound SMS

    @Test func aSignedSMSFromAnAllowedPhoneCommandsTheDevice() async throws {
        try await withHarness { harness in
            let answer = try await harness.sms("@a LIG")
            #expect(answer.status == 200)
            #expect(answer.contentType.hasPrefix("text/xml"))
            #expect(TwilioHarness.message(in: answer.body) == "Sent to a: LIG")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG"] })
            // `dev: cmd` form, from the second phone written with separators in the configuration.
            let second = try await harness.sms("a: ACK", from: TwilioHarness.bob)
            #expect(TwilioHarness.message(in: second.body) == "Sent to a: ACK")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG", "ACK"] })
        }
    }

    @Test func forgedUnsignedAndWronglySignedWebhooksAre403AndPublishNothing() async throws {
        try await withHarness { harness in
            let parameters = [("MessageSid", "SMforged1"), ("From", TwilioHarness.alice), ("Body", "@a LIG")]
            let unsigned = try await harness.post("/twilio/sms", parameters, token: nil)
            let wrongToken = try await harness.post("/twilio/sms", parameters, token: "not-the-token")
            // Signed correctly, then the body changed on the way.
            let tampered = try await harness.post(
                "/twilio/sms", parameters,
                body: TwilioWebhookSigner.formBody([("MessageSid", "SMforged1"), ("From", TwilioHarness.alice), ("Body", "@b LIG")]))
            for answer in [unsigned, wrongToken, tampered] {
                #expect(answer.status == 403)
                #expect(!answer.body.contains(TwilioHarness.authToken))
            }
            for path in ["/twilio/status", "/twilio/ipcommands"] {
                let forged = try await harness.post(path, [("MessageSid", "SMx"), ("MessageStatus", "delivered")], token: "forged")
                #expect(forged.status == 403)
            }
            #expect(harness.bridge.application.webhooks.counters.snapshot.forged == 5)
            // Something that is published afterwards arrives; nothing before it did.
            _ = try await harness.sms("@b ping")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("b") == ["ping"] })
            #expect(harness.downPayloads("a").isEmpty)
        }
    }

    @Test func aStrangerGetsAPoliteRefusalAndNothingIsPublished() async throws {
        try await withHarness { harness in
            let answer = try await harness.sms("@a LIG", from: TwilioHarness.stranger)
            #expect(answer.status == 200)
            #expect(TwilioHarness.message(in: answer.body) == "Sorry, this number is not allowed to command devices here.")
            // bob may command a but not b.
            let notHis = try await harness.sms("@b LIG", from: TwilioHarness.bob)
            #expect(TwilioHarness.message(in: notHis.body) == "Sorry, this number may not command b.")
            _ = try await harness.sms("@a marker")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["marker"] })
            #expect(harness.downPayloads("b").isEmpty)
        }
    }

    @Test func aRetriedMessageSidIsPublishedOnce() async throws {
        try await withHarness { harness in
            let first = try await harness.sms("@a LIG", sid: "SMretried0001")
            let retry = try await harness.sms("@a LIG", sid: "SMretried0001")
            #expect(first.status == 200 && retry.status == 200)
            _ = try await harness.sms("@a marker")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a").last == "marker" })
            #expect(harness.downPayloads("a") == ["LIG", "marker"])
            #expect(harness.bridge.application.webhooks.counters.snapshot.duplicates == 1)
        }
    }

    @Test func topicInjectionAttemptsAreRefused() async throws {
        try await withHarness { harness in
            for body in ["@a/# X", "@+ X", "@ X", "@# X", "a/b: X", "STATUS +"] {
                let answer = try await harness.sms(body)
                #expect(answer.status == 200)
                #expect(TwilioHarness.message(in: answer.body)?.hasPrefix("Sorry, that is not a device name") == true, "\(body)")
            }
            _ = try await harness.sms("@a marker")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["marker"] })
            let downs = harness.bridge.watcher.messages.filter { $0.topic.hasSuffix("/down") }
            #expect(downs.map(\.topic) == ["dtwin/a/down"])
        }
    }

    @Test func oversizeBodiesAndWrongContentTypesAreRefused() async throws {
        try await withHarness { harness in
            let huge = String(repeating: "x", count: 70_000)
            let tooBig = try await harness.sms("@a " + huge)
            #expect(tooBig.status == 413)
            let json = try await harness.post(
                "/twilio/sms", [("Body", "@a LIG")], contentType: "application/json", body: #"{"Body":"@a LIG"}"#)
            #expect(json.status == 415)
            let malformed = try await harness.post("/twilio/sms", [], body: "Body=%zz")
            #expect(malformed.status == 400)
            #expect(harness.downPayloads("a").isEmpty)
        }
    }

    @Test func statusAnswersWithTheLatestReadingAndBareCommandsFindTheirDevice() async throws {
        try await withHarness { harness in
            try await harness.bridge.publish("dtwin/a/up", "sim-a data 734")
            try await harness.bridge.publish("dtwin/a/up", "a:awake")
            try await harness.bridge.publish("dtwin/a/status", "online")
            #expect(await waitUntil { harness.bridge.application.bridge.registry.entry(DeviceName("a")!)?.status == "online" })
            let status = try await harness.sms("STATUS a")
            let text = try #require(TwilioHarness.message(in: status.body))
            #expect(text.hasPrefix("a: 734 at ") && text.hasSuffix("(online)."), "\(text)")
            // bob may command only a: a bare command goes there.
            let bare = try await harness.sms("LIG", from: TwilioHarness.bob)
            #expect(TwilioHarness.message(in: bare.body) == "Sent to a: LIG")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG"] })
            // alice may command a, b and uno: she is asked which.
            let ambiguous = try await harness.sms("LIG")
            #expect(TwilioHarness.message(in: ambiguous.body)?.hasPrefix("Which device?") == true)
        }
    }

    // MARK: outbound SMS

    @Test func aDevicesSMSTopicTextsItsPhonesAndMakesItTheDefaultForBareCommands() async throws {
        try await withHarness { harness in
            try await harness.bridge.publish("dtwin/b/sms", "door open")
            #expect(await waitUntil { harness.twilio.messages.count == 1 })
            let sent = try #require(harness.twilio.messages.first)
            #expect(sent.to == TwilioHarness.alice && sent.body == "door open" && sent.from == "+15017122661")
            #expect(sent.statusCallback == TwilioHarness.publicURL + "/twilio/status")
            // b texted alice last, so her bare command goes to b.
            let bare = try await harness.sms("ACK")
            #expect(TwilioHarness.message(in: bare.body) == "Sent to b: ACK")
            #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("b") == ["ACK"] })
            // Twilio reports delivery; the outbox shows it.
            let callback = try await harness.post(
                "/twilio/status", [("MessageSid", sent.sid), ("MessageStatus", "delivered"), ("AccountSid", TwilioHarness.accountSid)])
            #expect(callback.status == 204)
            let outbox = try await harness.get("/api/outbox")
            #expect(outbox.status == 200)
            #expect(outbox.body.contains(#""twilioStatus":"delivered""#) && outbox.body.contains(sent.sid))
        }
    }

    @Test func alertRulesTextOncePerCooldown() async throws {
        try await withHarness(configure: { configuration in
            var rule = DTwinConfiguration.AlertRule()
            rule.below = 100
            rule.text = "{device} light low: {value}"
            rule.cooldown = .seconds(600)
            configuration.alerts = [rule]
        }) { harness in
            try await harness.bridge.publish("dtwin/a/up", "sim-a data 80")
            try await harness.bridge.publish("dtwin/a/up", "sim-a data 70")
            try await harness.bridge.publish("dtwin/a/up", "sim-a data 500")
            #expect(await waitUntil { harness.twilio.messages.count == 2 })
            // One alert for a (to its two phones); the second low reading is inside the cooldown.
            // The rules run as each reading is stored: once all three are, every alert is decided.
            let store = try BridgeApplication.openStore(harness.bridge.configuration)
            #expect(await waitUntil { ((try? await store.items(device: DeviceName("a")!, since: nil, until: nil, limit: 10)) ?? []).count == 3 })
            try await store.close()
            #expect(harness.bridge.application.outbox.entries.count == 2)
            #expect(harness.twilio.messages.map(\.body) == ["a light low: 80", "a light low: 80"])
            #expect(Set(harness.twilio.messages.map(\.to)) == [TwilioHarness.alice, TwilioHarness.bob])
        }
    }

    @Test func twilioRefusalsAreNotRetriedAndRateLimitsAre() async throws {
        try await withHarness { harness in
            harness.twilio.failNext(.tooManyRequests)
            try await harness.bridge.publish("dtwin/b/sms", "retried")
            #expect(await waitUntil(timeout: .seconds(10)) { harness.twilio.messages.count == 1 })
            harness.twilio.failNext(.invalidTo)
            try await harness.bridge.publish("dtwin/b/sms", "refused")
            #expect(await waitUntil { harness.bridge.application.outbox.entries.last?.state == .failed })
            #expect(harness.twilio.messages.map(\.body) == ["retried"])
            #expect(harness.bridge.application.outbox.entries.last?.error?.contains("21211") == true)
        }
    }

    @Test func theHourlyBudgetIsNeverExceeded() async throws {
        try await withHarness(configure: { $0.twilio.smsPerHour = 2 }) { harness in
            for n in 1...4 { try await harness.bridge.publish("dtwin/b/sms", "sms \(n)") }
            #expect(await waitUntil { harness.bridge.application.outbox.entries.filter { $0.state != .pending }.count == 4 })
            #expect(harness.twilio.messages.map(\.body) == ["sms 1", "sms 2"])
            #expect(harness.bridge.application.outbox.entries.map(\.state) == [.accepted, .accepted, .overBudget, .overBudget])
        }
    }

    @Test func withoutCredentialsSMSAreADryRunAndWebhooksAreRefused() async throws {
        try await withHarness(credentials: false) { harness in
            try await harness.bridge.publish("dtwin/b/sms", "dry")
            #expect(await waitUntil { harness.bridge.application.outbox.entries.first?.state == .dryRun })
            let outbox = try await harness.get("/api/outbox")
            #expect(outbox.body.contains(#""dryRun":true"#) && outbox.body.contains(#""state":"dry-run""#))
            let webhook = try await harness.sms("@a LIG")
            #expect(webhook.status == 403)
            #expect(harness.twilio.requestCount == 0)
        }
    }

    @Test func theAPINeedsTheBearerToken() async throws {
        try await withHarness { harness in
            let missing = try await harness.get("/api/outbox", bearer: nil)
            let wrong = try await harness.get("/api/outbox", bearer: "wrong")
            let right = try await harness.get("/api/outbox")
            let health = try await harness.get("/healthz", bearer: nil)
            let statuses = [missing.status, wrong.status, right.status, health.status]
            #expect(statuses == [401, 401, 200, 200])
        }
        try await withHarness(apiToken: false) { harness in
            let closed = try await harness.get("/api/outbox")
            #expect(closed.status == 403 && closed.body.contains("DTWIN_API_TOKEN"))
        }
    }

    // MARK: cellular devices

    @Test func anIPCommandFromASIMFlowsToTheCloudAsTwilioIPCommand() async throws {
        try await withHarness { harness in
            let payload = Data("sim-uno data 321".utf8).base64EncodedString()
            let answer = try await harness.post(
                "/twilio/ipcommands",
                [
                    ("Sid", "HG0001"), ("SimSid", "HS0001"), ("SimUniqueName", "uno"), ("Status", "received"), ("Direction", "from_sim"),
                    ("PayloadType", "binary"), ("Payload", payload), ("DevicePort", "6969"),
                ])
            #expect(answer.status == 200)
            // Taken in directly (never round-tripped through dtwin/uno/up), and shown on the bridge's copy topic.
            #expect(await harness.bridge.watcher.waitFor { _ in harness.bridge.payloads(on: "dtwin/bridge/ipcommand/uno") == ["sim-uno data 321"] })
            let store = try BridgeApplication.openStore(harness.bridge.configuration)
            #expect(await waitUntil { ((try? await store.items(device: DeviceName("uno")!, since: nil, until: nil, limit: 5)) ?? []).count == 1 })
            let items = try await store.items(device: DeviceName("uno")!, since: nil, until: nil, limit: 5)
            #expect(items.map(\.source) == ["twilio-ipcommand"] && items.first?.value == 321)
            // A SIM without a unique name cannot be placed in the tree.
            let unnamed = try await harness.post("/twilio/ipcommands", [("Sid", "HG0002"), ("Payload", payload)])
            #expect(unnamed.status == 400 && unnamed.body.contains("SimUniqueName"))
            // Twilio's callback about a command sent *to* the SIM is not a device message.
            let toSim = try await harness.post(
                "/twilio/ipcommands", [("Sid", "HG0003"), ("SimUniqueName", "uno"), ("Direction", "to_sim"), ("Payload", "LIG")])
            #expect(toSim.status == 200 && toSim.body.contains("ignored"))
            // Nothing more was taken in: a later marker reading arrives, and only it joins the first.
            try await harness.bridge.publish("dtwin/uno/up", "sim-uno data 7")
            #expect(await waitUntil { ((try? await store.items(device: DeviceName("uno")!, since: nil, until: nil, limit: 5)) ?? []).count == 2 })
            #expect(harness.bridge.payloads(on: "dtwin/bridge/ipcommand/uno") == ["sim-uno data 321"])
            #expect(harness.bridge.payloads(on: "dtwin/uno/up") == ["sim-uno data 7"])
            try await store.close()
        }
    }

    @Test func commandsForACellularDeviceGoOutAsIPCommands() async throws {
        try await withHarness { harness in
            let answer = try await harness.sms("@uno LIG")
            #expect(TwilioHarness.message(in: answer.body) == "Sent to uno: LIG")
            #expect(await waitUntil { harness.twilio.ipCommands.count == 1 })
            let command = try #require(harness.twilio.ipCommands.first)
            #expect(command.sim == "uno" && command.payload == "LIG" && command.devicePort == "6969" && command.payloadType == "text")
            #expect(harness.downPayloads("uno").isEmpty)
        }
    }
}
