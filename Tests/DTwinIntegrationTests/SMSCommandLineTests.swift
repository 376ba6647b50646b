import DTwinTestSupport
import Foundation
import Testing

/// `dtwin sms` against the local Twilio-contract server.
@Suite struct SMSCommandLineTests {
    static let sid = "AC" + String(repeating: "c", count: 32)
    static let token = "cli-secret-token-77"

    func environment(_ twilio: TwilioAPIServer, token: String = SMSCommandLineTests.token) -> [String: String] {
        ["DTWIN_TWILIO_APIBASE": twilio.baseURL, "DTWIN_TWILIO_FROM": "+15017122661", "TWILIO_ACCOUNT_SID": Self.sid, "TWILIO_AUTH_TOKEN": token]
    }

    @Test func sendsOneSMSAndPrintsTwiliosSid() async throws {
        let twilio = try await TwilioAPIServer.start(accountSid: Self.sid, authToken: Self.token)
        let result = try await DTwinBinary.run(["sms", "--to", "+1 206 555 0100", "hello from dtwin"], environment: environment(twilio))
        #expect(result.code == 0, "\(result.output)")
        #expect(twilio.messages.map(\.body) == ["hello from dtwin"])
        #expect(twilio.messages.first?.to == "+12065550100")
        if let sid = twilio.messages.first?.sid { #expect(result.output.contains(sid)) }
        await twilio.stop()
    }

    @Test func twiliosRefusalIsOneLineWithItsCodeAndNoToken() async throws {
        let twilio = try await TwilioAPIServer.start(accountSid: Self.sid, authToken: Self.token)
        let wrong = "wrong-token-should-never-print"
        let result = try await DTwinBinary.run(["sms", "--to", "+12065550100", "x"], environment: environment(twilio, token: wrong))
        #expect(result.code == 1)
        #expect(result.output.contains("401") && result.output.contains("20003"), "\(result.output)")
        #expect(!result.output.contains(wrong))
        #expect(!result.output.contains("Fatal error") && result.output.split(separator: "\n").count == 1)
        #expect(twilio.messages.isEmpty)
        await twilio.stop()
    }

    @Test func withoutCredentialsItPrintsTheDryRun() async throws {
        let result = try await DTwinBinary.run(["sms", "--to", "+12065550100", "--from", "+15017122661", "dry"])
        #expect(result.code == 0)
        #expect(result.output.contains("dry run") && result.output.contains("dry"))
    }

    @Test func badArgumentsAndHalfCredentialsExitTwo() async throws {
        let badNumber = try await DTwinBinary.run(["sms", "--to", "2065550100", "x"])
        #expect(badNumber.code == 2 && badNumber.output.contains("not a phone number"))
        let half = try await DTwinBinary.run(
            ["sms", "--to", "+12065550100", "--from", "+15017122661", "x"], environment: ["TWILIO_ACCOUNT_SID": Self.sid])
        #expect(half.code == 2 && half.output.contains("TWILIO_AUTH_TOKEN"), "\(half.output)")
        let tooLong = try await DTwinBinary.run(["sms", "--to", "+12065550100", String(repeating: "x", count: 1601)])
        #expect(tooLong.code == 2)
    }
}

/// The bridge's HTTP server refuses to start on a busy port with a message naming the keys.
@Test func aBusyHTTPPortStopsTheBridgeWithAClearError() async throws {
    let broker = try MosquittoProcess()
    defer { broker.stop() }
    let occupant = try await HTTPReceiver.start()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-port-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let result = try await DTwinBinary.run(
        ["bridge"],
        environment: [
            "DTWIN_BROKER": broker.url, "DTWIN_HTTP_PORT": "\(occupant.port)",
            "DTWIN_STORE_PATH": directory.appendingPathComponent("twin.sqlite").path, "DTWIN_CLIENTID": "port-test",
            "DTWIN_SPOOL_PATH": directory.appendingPathComponent("spool").path,
        ])
    #expect(result.code == 1)
    #expect(result.output.contains("cannot listen on 127.0.0.1:\(occupant.port) (http.host, http.port): Address already in use"))
    await occupant.stop()
}
