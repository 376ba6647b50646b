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
        let result = try await DTwinBinary.run(["sms", "--to", "+12065550100", "--from", "+1 501 712 2661", "dry"])
        #expect(result.code == 0)
        #expect(result.output.contains("dry run") && result.output.contains("from +15017122661 to +12065550100: dry"), "\(result.output)")
        // No sender yet is no reason to hide the dry run: it says what is missing.
        let noSender = try await DTwinBinary.run(["sms", "--to", "+12065550100", "hello"])
        #expect(noSender.code == 0, "\(noSender.output)")
        #expect(noSender.output.contains("would send from (no sender yet: set twilio.from or pass --from) to +12065550100: hello"))
    }

    @Test func badArgumentsAndHalfCredentialsExitTwo() async throws {
        // One phone rule for --to, --from and twilio.from.
        for (arguments, environment, words) in [
            (["--to", "2065550100"], [:], #"--to "2065550100" is not a phone number"#),
            (["--to", "+12065550100", "--from", "555"], [:], #"--from "555" is not a phone number"#),
            (["--to", "+12065550100"], ["DTWIN_TWILIO_FROM": "555"], "twilio.from: must be a phone number like +15017122661"),
        ] {
            let refused = try await DTwinBinary.run(["sms"] + arguments + ["x"], environment: environment)
            #expect(refused.code == 2 && refused.output.contains(words), "\(arguments): \(refused.output)")
        }
        let half = try await DTwinBinary.run(
            ["sms", "--to", "+12065550100", "--from", "+15017122661", "x"], environment: ["TWILIO_ACCOUNT_SID": Self.sid])
        #expect(half.code == 2, "\(half.output)")
        #expect(
            half.output.contains(
                "dtwin: TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN (or acct_token_env) is not: set both to send SMS, or neither for a dry run"),
            "\(half.output)")
        #expect(!half.output.contains(Self.sid))
        // The bridge stops on it before it makes anything (its files would go to a folder of their own).
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-half-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let halfBridge = try await DTwinBinary.run(
            ["bridge"],
            environment: [
                "acct_token_env": "seed-token-secret", "DTWIN_STORE_PATH": folder + "/twin.sqlite", "DTWIN_SPOOL_PATH": folder + "/spool",
                "DTWIN_HTTP_PORT": "0", "DTWIN_BROKER": "mqtt://127.0.0.1:\(try freeLoopbackPort())",
            ])
        #expect(halfBridge.code == 2 && halfBridge.output.contains("acct_token_env is set but TWILIO_ACCOUNT_SID (or acct_id_env) is not"))
        #expect(!halfBridge.output.contains("seed-token-secret"))
        let tooLong = try await DTwinBinary.run(["sms", "--to", "+12065550100", String(repeating: "x", count: 1601)])
        #expect(tooLong.code == 2)
    }
}

/// The bridge's HTTP server refuses to start on a busy port with a message naming the keys.
@Test func aBusyHTTPPortStopsTheBridgeWithAClearError() async throws {
    let broker = try MosquittoProcess()
    defer { broker.stop() }
    let occupant = try await HTTPReceiver.start()
    let directory = try makeTemporaryFolder("dtwin-port")
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
