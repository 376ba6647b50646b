import DTwinTestSupport
import Foundation

/// The `dtwin bridge` binary with Twilio set up, its own broker and folder, and a fixed HTTP
/// port: restartable on the same files (HardeningTests, TwinTests). `cleanUp()` stops the
/// broker and removes the folder.
struct TwilioBridgeProcess {
    let broker: MosquittoProcess
    let folder: URL
    let port: Int

    init(_ name: String) throws {
        broker = try MosquittoProcess()
        folder = try makeTemporaryFolder(name)
        port = try freeLoopbackPort()
    }

    func cleanUp() {
        broker.stop()
        try? FileManager.default.removeItem(at: folder)
    }

    var environment: [String: String] {
        [
            "DTWIN_BROKER": broker.url, "DTWIN_STORE_PATH": folder.appendingPathComponent("twin.sqlite").path,
            "DTWIN_SPOOL_PATH": folder.appendingPathComponent("spool").path, "DTWIN_HTTP_PORT": "\(port)",
            "DTWIN_HTTP_PUBLICURL": TwilioHarness.publicURL, "DTWIN_SHUTDOWNTIMEOUT": "3s",
            "DTWIN_CLIENTID": "hardening-\(port)",
            "DTWIN_DEVICES": #"{"uno1": {"phones": ["\#(TwilioHarness.alice)"]}}"#,
            "TWILIO_ACCOUNT_SID": TwilioHarness.accountSid, "TWILIO_AUTH_TOKEN": TwilioHarness.authToken,
            "DTWIN_API_TOKEN": "listing-token",
        ]
    }

    /// Starts the bridge and waits until it listens (and, if asked, is connected to the broker).
    func start(connected: Bool = false, extra: [String: String] = [:]) async throws -> RunningDTwin {
        let bridge = try RunningDTwin(["bridge"], environment: environment.merging(extra) { $1 })
        guard await waitUntil(timeout: .seconds(20), { isListening(port: port) }) else {
            throw TestSupportError("the bridge did not listen on \(port):\n\(bridge.output)")
        }
        if connected, !(await waitUntil(timeout: .seconds(10)) { bridge.output.contains("MQTT connected") }) {
            throw TestSupportError("the bridge did not connect to the broker:\n\(bridge.output)")
        }
        return bridge
    }
}
