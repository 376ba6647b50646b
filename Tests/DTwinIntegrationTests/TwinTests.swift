import AsyncHTTPClient
import DTwinAWS
import DTwinConfig
import DTwinContract
import DTwinDynamoDB
import DTwinMQTT
import DTwinTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The twin through the bridge (issue 19): desired set by the API while the device is away
/// reaches it once when it is back, and its report closes the delta. The tests that take a
/// store kind run on both twin tables: SQLite, and DynamoDB on moto's server.
@Suite struct TwinTests {
    /// A bridge whose twin table is `kind`; for DynamoDB, a moto server with the table made,
    /// which `stop` stops.
    static func harness(
        on kind: DTwinConfiguration.StoreKind, configure: (inout DTwinConfiguration) -> Void = { _ in }
    ) async throws -> (harness: TwilioHarness, stop: @Sendable () async -> Void) {
        guard kind == .dynamodb else {
            let harness = try await TwilioHarness(configure: configure)
            return (harness, { await harness.stop() })
        }
        let moto = try MotoServer()
        let credentials = AWSCredentials(accessKeyId: "AKIDTWIN", secretAccessKey: "twin-secret")
        try await DynamoDBClient(endpoint: moto.endpoint, region: "us-west-2", credentials: credentials, http: .shared).createTwinTable()
        let harness = try await TwilioHarness(environment: ["AWS_ACCESS_KEY_ID": "AKIDTWIN", "AWS_SECRET_ACCESS_KEY": "twin-secret"]) {
            $0.store.kind = .dynamodb
            $0.store.endpoint = moto.endpoint
            configure(&$0)
        }
        return (
            harness,
            {
                await harness.stop()
                moto.stop()
            }
        )
    }

    static func patch(_ harness: TwilioHarness, _ device: String, _ body: String, ifMatch: Int? = nil) async throws -> TwilioHarness.Answer {
        try await harness.api(
            .PATCH, "/api/devices/\(device)/state", body: body, contentType: "application/json",
            headers: ifMatch.map { ["If-Match": "\($0)"] } ?? [:])
    }

    @Test(arguments: DTwinConfiguration.StoreKind.allCases)
    func aDesiredChangeWaitsForTheDeviceAndIsSentOnce(_ kind: DTwinConfiguration.StoreKind) async throws {
        let (harness, stop) = try await Self.harness(on: kind)
        let bridge = harness.bridge
        try await bridge.publish("dtwin/sim1/status", "offline")
        // Its offline status is in the twin before anything is set, so the versions below are stable.
        #expect(await waitUntil { (try? await harness.get("/api/devices/sim1/state"))?.json["reported"] as? [String: Bool] == ["online": false] })

        let set = try await Self.patch(harness, "sim1", #"{"desired": {"led": true}}"#)
        #expect(set.status == 200, "\(set.body)")
        #expect((set.json["delta"] as? [String: Bool]) == ["led": true])
        let version = set.json["version"] as? Int ?? -1
        // A second writer holding an older version is refused with the current one.
        let stale = try await Self.patch(harness, "sim1", #"{"desired": {"period": 60}}"#, ifMatch: version - 1)
        #expect(stale.status == 412 && stale.error?.contains("version is now \(version)") == true, "\(stale.body)")
        let bad = try await Self.patch(harness, "sim1", #"{"desired": {"colour": "red"}}"#)
        #expect(bad.status == 400 && bad.error?.contains("unknown desired key") == true)
        try await Task.sleep(for: .milliseconds(300))
        #expect(harness.downPayloads("sim1").isEmpty, "nothing is sent to a device that is away")

        // Back online: the pending LED goes out, once, though the device says so twice more
        // (its awake message, a status the broker delivers again) before it reports the LED.
        try await bridge.publish("dtwin/sim1/status", "online")
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("sim1") == ["LIG"] })
        try await bridge.publish("dtwin/sim1/up", "sim1:awake")
        try await Task.sleep(for: .milliseconds(300))
        try await bridge.publish("dtwin/sim1/status", "online")
        try await Task.sleep(for: .milliseconds(600))
        #expect(harness.downPayloads("sim1") == ["LIG"])
        // A change while it is online sends that key's command only, not the LED's again.
        #expect(try await Self.patch(harness, "sim1", #"{"desired": {"period": 60}}"#).status == 200)
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("sim1") == ["LIG", "PERIOD 60"] }, "\(harness.downPayloads("sim1"))")
        // The device reports its LED and period with a reading: the delta closes.
        try await bridge.publish("dtwin/sim1/up", #"{"value": 723, "led": true, "period": 60}"#)
        #expect(
            await waitUntil(timeout: .seconds(10)) {
                let state = try? await harness.get("/api/devices/sim1/state")
                return (state?.json["delta"] as? [String: Any])?.isEmpty == true && (state?.json["pending"] as? [String: Any])?.isEmpty == true
            })
        let state = try await harness.get("/api/devices/sim1/state")
        let reported = try #require(state.json["reported"] as? [String: Any])
        #expect(reported["led"] as? Bool == true && reported["value"] as? Double == 723 && reported["online"] as? Bool == true)
        // Back again later: nothing is pending, nothing is sent again.
        try await bridge.publish("dtwin/sim1/status", "offline")
        try await bridge.publish("dtwin/sim1/status", "online")
        try await Task.sleep(for: .milliseconds(500))
        #expect(harness.downPayloads("sim1") == ["LIG", "PERIOD 60"])
        // It restarts and reports its defaults: the twin brings it back to the desired state.
        try await bridge.publish("dtwin/sim1/up", #"{"value": 400, "led": false, "period": 60}"#)
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("sim1") == ["LIG", "PERIOD 60", "LIG"] }, "\(harness.downPayloads("sim1"))")
        // `/metrics` counts every stored change: the ones so far, and a desired change as one.
        let writes = { () async throws -> Int in
            let scraped = try await TwilioHarness.execute(HTTPClientRequest(url: "http://127.0.0.1:\(harness.port)/metrics"))
            let line = scraped.body.split(separator: "\n").first { $0.hasPrefix("dtwin_twin_writes_total ") }
            return try #require(line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) })
        }
        let before = try await writes()
        #expect(before >= 5)
        #expect(try await Self.patch(harness, "sim1", #"{"desired": {"period": 61}}"#).status == 200)
        #expect(try await writes() == before + 1)
        await stop()
    }

    /// From SMS to LED to reported state: `SET a led on` from a number on a's list sends LIG to
    /// a device that is online, STATUS shows what is pending until the device reports it.
    @Test(arguments: DTwinConfiguration.StoreKind.allCases)
    func anSMSSetsTheDesiredStateAndStatusShowsWhatIsPending(_ kind: DTwinConfiguration.StoreKind) async throws {
        let (harness, stop) = try await Self.harness(on: kind)
        let bridge = harness.bridge
        try await bridge.publish("dtwin/a/status", "online")
        #expect(await waitUntil { (try? await harness.get("/api/devices/a/state"))?.json["reported"] as? [String: Bool] == ["online": true] })
        let set = try await harness.sms("SET a led on")
        #expect(TwilioHarness.message(in: set.body) == "a led set to on: sent.", "\(set.body)")
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG"] })
        let pending = try await harness.sms("STATUS a")
        #expect(TwilioHarness.message(in: pending.body)?.hasSuffix("Pending: led on.") == true, "\(pending.body)")
        let refused = try await harness.sms("SET a led dim")
        #expect(TwilioHarness.message(in: refused.body) == "Not set: led must be true or false.", "\(refused.body)")
        try await bridge.publish("dtwin/a/up", #"{"value": 800, "led": "on"}"#)
        #expect(
            await waitUntil(timeout: .seconds(10)) {
                let status = try? await harness.sms("STATUS a")
                return status.flatMap { TwilioHarness.message(in: $0.body) }?.hasPrefix("a: 800 at ") == true
                    && status.flatMap { TwilioHarness.message(in: $0.body) }?.contains("Pending") == false
            })
        let status = try await harness.sms("STATUS a")
        #expect(TwilioHarness.message(in: status.body)?.hasSuffix("(online). Reported: led on.") == true, "\(status.body)")
        let again = try await harness.sms("SET a led on")
        #expect(TwilioHarness.message(in: again.body) == "a led is already on.")
        #expect(harness.downPayloads("a") == ["LIG"])
        await stop()
    }

    /// `dtwin state` shows and sets the twin through the running bridge's API.
    @Test func theCommandLineShowsAndSetsTheTwin() async throws {
        let harness = try await TwilioHarness()
        let environment = ["DTWIN_API_TOKEN": TwilioHarness.apiToken]
        let url = "http://127.0.0.1:\(harness.port)"
        let set = try await DTwinBinary.run(["state", "b", "--set", "led=on", "--set", "period=300", "--url", url], environment: environment)
        #expect(set.code == 0, "\(set.output)")
        #expect(set.output.contains("b (version 1)") && set.output.contains("desired:  led=on, period=300"), "\(set.output)")
        #expect(set.output.contains("pending:  led=on (LIG), period=300 (PERIOD 300)"), "\(set.output)")
        let stale = try await DTwinBinary.run(["state", "b", "--set", "led=off", "--if-version", "0", "--url", url], environment: environment)
        #expect(stale.code == 1 && stale.output.contains("version is now 1"), "\(stale.output)")
        let bad = try await DTwinBinary.run(["state", "b", "--set", "period=-5", "--url", url], environment: environment)
        #expect(bad.code == 2 && bad.output.contains("period must be a whole number"), "\(bad.output)")
        let shown = try await DTwinBinary.run(["state", "b", "--json", "--url", url], environment: environment)
        let document = try JSONDecoder().decode(TwinDocument.self, from: Data(shown.output.utf8))
        #expect(document.version == 1 && document.desired == ["led": .bool(true), "period": .number(300)])
        let noToken = try await DTwinBinary.run(["state", "b", "--url", url])
        #expect(noToken.code == 1 && noToken.output.contains("401"), "\(noToken.output)")
        await harness.stop()
        let away = try await DTwinBinary.run(["state", "b", "--url", url], environment: environment)
        #expect(away.code == 1 && away.output.contains("cannot reach the bridge at \(url)"), "\(away.output)")
        #expect(try await DTwinBinary.run(["state", "b", "--set", "led"]).code == 2)
    }

    /// A desired change accepted just before a SIGKILL is not lost: it is in the stored twin,
    /// and the restarted bridge sends it, once, when the device comes back.
    @Test func aDesiredChangeSurvivesASIGKILLOfTheBridge() async throws {
        let setup = try TwilioBridgeProcess("dtwin-twin-kill")
        defer { setup.cleanUp() }
        let device = try await MessageCollector(port: setup.broker.port, filters: ["dtwin/uno1/down"])
        try await device.client.publish(topic: "dtwin/uno1/status", payload: Array("offline".utf8), retain: true)
        let first = try await setup.start(connected: true)
        let api = "http://127.0.0.1:\(setup.port)"
        let environment = ["DTWIN_API_TOKEN": "listing-token"]
        #expect(await waitUntil { first.output.contains("status=offline") })
        let set = try await DTwinBinary.run(["state", "uno1", "--set", "led=on", "--url", api], environment: environment)
        #expect(set.code == 0 && set.output.contains("pending:  led=on (LIG)"), "\(set.output)")
        first.process.signal(SIGKILL)
        _ = await first.finish()
        #expect(device.messages.isEmpty, "nothing was sent while the device was away")

        let second = try await setup.start(connected: true)
        try await device.client.publish(topic: "dtwin/uno1/status", payload: Array("online".utf8), retain: true)
        #expect(await device.waitFor { $0.map(\.payload) == [Array("LIG".utf8)] }, "\(second.output)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(device.messages.count == 1, "sent once: \(second.output)")
        second.process.signal(SIGTERM)
        #expect(await second.finish() == 0)
        await device.close()
    }

    /// A cellular device has no status: a desired change waits for its next message (it is
    /// awake then) and goes out as a Super SIM IP command, once; its report closes the delta.
    @Test func aCellularDeviceGetsItsDesiredStateWhenItNextSpeaks() async throws {
        let harness = try await TwilioHarness()
        #expect(try await Self.patch(harness, "uno", #"{"desired": {"led": true}}"#).status == 200)
        try await Task.sleep(for: .milliseconds(300))
        #expect(harness.twilio.ipCommands.isEmpty, "nothing before the device speaks")
        func speak(_ sid: String, _ text: String) async throws -> Int {
            try await harness.post(
                "/twilio/ipcommands",
                [
                    ("Sid", sid), ("SimUniqueName", "uno"), ("Direction", "from_sim"), ("PayloadType", "binary"),
                    ("Payload", Data(text.utf8).base64EncodedString()), ("DevicePort", "6969"),
                ]
            ).status
        }
        #expect(try await speak("HG1001", "sim-uno data 50") == 200)
        #expect(await waitUntil { harness.twilio.ipCommands.map(\.payload) == ["LIG"] })
        #expect(try await speak("HG1002", "sim-uno data 51") == 200)
        try await Task.sleep(for: .milliseconds(600))
        #expect(harness.twilio.ipCommands.map(\.payload) == ["LIG"], "sent once for one wake-up")
        #expect(try await speak("HG1003", #"{"value": 350, "led": true}"#) == 200)
        #expect(
            await waitUntil {
                let state = try? await harness.get("/api/devices/uno/state")
                return state?.json["reported"].flatMap { $0 as? [String: Any] }?["led"] as? Bool == true
                    && (state?.json["delta"] as? [String: Any])?.isEmpty == true
            })
        #expect(harness.downPayloads("uno").isEmpty, "never over MQTT")
        await harness.stop()
    }

    /// A device's own keys and commands from the configuration (`devices.<dev>.twin`).
    @Test func aDeviceTakesTheKeysItsConfigurationNames() async throws {
        let harness = try await TwilioHarness {
            var fan = DTwinConfiguration.Device(phones: [TwilioHarness.alice])
            fan.twin = TwinSchema(keys: ["fan": .bool(on: "FAN 1", off: "FAN 0")])
            $0.devices[DeviceName("fan1")!] = fan
        }
        try await harness.bridge.publish("dtwin/fan1/status", "online")
        #expect(await waitUntil { (try? await harness.get("/api/devices/fan1/state"))?.json["reported"] as? [String: Bool] == ["online": true] })
        #expect(try await Self.patch(harness, "fan1", #"{"desired": {"fan": true}}"#).status == 200)
        #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("fan1") == ["FAN 1"] })
        let led = try await Self.patch(harness, "fan1", #"{"desired": {"led": true}}"#)
        #expect(led.status == 400 && led.error == #"unknown desired key "led"; this device takes fan"#, "\(led.body)")
        await harness.stop()
    }

    /// The twin over MQTT: every stored change is published, retained, on `dtwin/<dev>/state`;
    /// `state/set` sets the desired state; a stale version, a bad key or a broken document is
    /// refused on `state/rejected` with the reason (and the request's clientToken), nothing sent.
    @Test(arguments: DTwinConfiguration.StoreKind.allCases)
    func theTwinIsPublishedAndSetOverMQTT(_ kind: DTwinConfiguration.StoreKind) async throws {
        let (harness, stop) = try await Self.harness(on: kind) {
            var slow = DTwinConfiguration.Device()
            slow.twinTimeout = .seconds(1)
            $0.devices[DeviceName("slow")!] = slow
        }
        let bridge = harness.bridge
        func documents(_ device: String) -> [TwinDocument] {
            bridge.watcher.messages(on: "dtwin/\(device)/state").compactMap {
                try? JSONDecoder().decode(TwinDocument.self, from: Data($0.payload))
            }
        }
        func rejections() -> [TwinRejection] {
            bridge.watcher.messages(on: "dtwin/m1/state/rejected").compactMap {
                try? JSONDecoder().decode(TwinRejection.self, from: Data($0.payload))
            }
        }
        try await bridge.publish("dtwin/m1/status", "online")
        #expect(await bridge.watcher.waitFor { _ in documents("m1").last?.reported["online"] == .bool(true) })

        try await bridge.publish("dtwin/m1/state/set", #"{"desired": {"led": true}, "clientToken": "first"}"#)
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("m1") == ["LIG"] })
        #expect(await bridge.watcher.waitFor { _ in documents("m1").last?.pending["led"]?.command == "LIG" })
        let version = documents("m1").last?.version ?? -1
        #expect(documents("m1").last?.delta == ["led": .bool(true)])

        try await bridge.publish("dtwin/m1/state/set", #"{"desired": {"period": 60}, "version": 0, "clientToken": "stale"}"#)
        try await bridge.publish("dtwin/m1/state/set", #"{"desired": {"colour": "red"}}"#)
        try await bridge.publish("dtwin/m1/state/set", "led on please")
        try await bridge.publish("dtwin/m1/state/set", #"{"desired": {"note": ""# + String(repeating: "x", count: 9000) + #""}}"#)
        #expect(await bridge.watcher.waitFor { _ in rejections().count == 4 }, "\(rejections())")
        let refused = rejections()
        #expect(refused.map(\.code) == [409, 400, 400, 413], "\(refused)")
        #expect(refused.first == TwinRejection(.staleVersion(current: version), clientToken: "stale"))
        #expect(refused.dropFirst().first?.message == "unknown desired key \"colour\"; this device takes led, period")
        #expect(refused.dropFirst(2).first?.message.hasPrefix("the document is not a JSON object") == true)
        // The device reports: the delta closes, and the document says so.
        try await bridge.publish("dtwin/m1/up", #"{"value": 640, "led": true}"#)
        #expect(await bridge.watcher.waitFor { _ in documents("m1").last.map { $0.delta.isEmpty && $0.pending.isEmpty } == true })
        #expect(harness.downPayloads("m1") == ["LIG"], "nothing but the LED was sent")
        #expect(documents("m1").last?.desired == ["led": .bool(true)], "no refused request changed it")
        // A client that subscribes later gets the newest document, retained.
        let late = try await MessageCollector(port: bridge.broker.port, filters: ["dtwin/m1/state"])
        #expect(await late.waitFor { $0.count == 1 })
        #expect(late.messages.first?.retain == true)
        #expect(late.messages.first.flatMap { try? JSONDecoder().decode(TwinDocument.self, from: Data($0.payload)) } == documents("m1").last)
        await late.close()

        // A key that waits past devices.<dev>.twinTimeout shows failed in the published document.
        try await bridge.publish("dtwin/slow/state/set", #"{"desired": {"period": 90}}"#)
        #expect(await bridge.watcher.waitFor(timeout: .seconds(10)) { _ in documents("slow").last?.pending["period"]?.failed == true })
        #expect(harness.downPayloads("slow").isEmpty, "slow never came online")
        await stop()
    }
}
