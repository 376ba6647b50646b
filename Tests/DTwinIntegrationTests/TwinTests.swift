import DTwinContract
import DTwinTestSupport
import Foundation
import NIOHTTP1
import Testing

/// The twin through the bridge (issue 19): desired set by the API while the device is away
/// reaches it once when it is back, and its report closes the delta.
@Suite struct TwinTests {
    static func patch(_ harness: TwilioHarness, _ device: String, _ body: String, ifMatch: Int? = nil) async throws -> TwilioHarness.Answer {
        try await harness.api(
            .PATCH, "/api/devices/\(device)/state", body: body, contentType: "application/json",
            headers: ifMatch.map { ["If-Match": "\($0)"] } ?? [:])
    }

    @Test func aDesiredChangeWaitsForTheDeviceAndIsSentOnce() async throws {
        let harness = try await TwilioHarness()
        let bridge = harness.bridge
        try await bridge.publish("dtwin/sim1/status", "offline")
        #expect(await waitUntil { (try? await harness.get("/api/devices/sim1/state"))?.json["reported"] as? [String: Any] != nil })

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

        // Back online: the pending LED goes out, once.
        try await bridge.publish("dtwin/sim1/status", "online")
        #expect(await bridge.watcher.waitFor { _ in harness.downPayloads("sim1") == ["LIG"] })
        // The device reports its LED with a reading: the delta closes.
        try await bridge.publish("dtwin/sim1/up", #"{"value": 723, "led": true}"#)
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
        #expect(harness.downPayloads("sim1") == ["LIG"])
        await harness.stop()
    }
}
