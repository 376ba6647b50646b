import AsyncHTTPClient
import DTwinContract
import DTwinTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@testable import DTwinTwilio

/// The test signer must itself agree with Twilio's libraries before any test relies on it.
@Test func theTestSignerReproducesTheLibrariesVectors() {
    let usable = SignatureVectorTests.vectors.filter { vector in
        vector.body == nil && vector.pythonAccepts && Set(vector.parameters.map(\.name)).count == vector.parameters.count
            && !vector.name.contains("port") && !vector.name.contains("creds")
    }
    #expect(usable.count >= 10)
    for vector in usable {
        let signature = TwilioWebhookSigner.signature(
            url: vector.url, parameters: vector.parameters.map { ($0.name, $0.value) }, authToken: vector.authToken)
        #expect(signature == vector.signature, "\(vector.name)")
    }
}

@Suite(.serialized)
struct TwilioClientTests {
    static let sid = "AC" + String(repeating: "a", count: 32)
    static let token = "test_auth_token"
    static let alice = PhoneNumber("+12065550100")!

    func withTwilio(
        token: String = TwilioClientTests.token, _ body: (TwilioAPIServer, TwilioClient) async throws -> Void
    ) async throws {
        let server = try await TwilioAPIServer.start(accountSid: Self.sid, authToken: Self.token)
        let http = HTTPClient.shared
        let client = TwilioClient(
            credentials: TwilioCredentials(accountSid: Self.sid, authToken: token), apiBase: server.baseURL + "/",
            superSimBase: server.baseURL, timeout: .seconds(5), client: http)
        do {
            try await body(server, client)
        } catch {
            Issue.record("\(error)")
        }
        await server.stop()
    }

    @Test func sendsAMessageTheWayTwilioPythonDoes() async throws {
        try await withTwilio { server, client in
            let accepted = try await client.sendMessage(
                to: Self.alice, from: "+15017122661", body: "hello device", statusCallback: "https://bridge.example.com/twilio/status")
            #expect(accepted.sid.hasPrefix("SM") && accepted.status == "queued")
            #expect(
                server.messages == [
                    .init(
                        sid: accepted.sid, to: "+12065550100", from: "+15017122661", body: "hello device",
                        statusCallback: "https://bridge.example.com/twilio/status")
                ])
            #expect(server.refusals.isEmpty)
        }
    }

    @Test func aWrongTokenIsTwilios401WithItsCode() async throws {
        try await withTwilio(token: "wrong") { server, client in
            do throws(TwilioError) {
                _ = try await client.sendMessage(to: Self.alice, from: "+15017122661", body: "x", statusCallback: nil)
                Issue.record("a wrong token must fail")
            } catch {
                #expect(error.kind == .api(status: 401, code: 20003, message: "Authenticate"))
                #expect(!error.isRetryable && error.certainlyNotSent)
                #expect(!"\(error)".contains("wrong"))
            }
            #expect(server.messages.isEmpty)
        }
    }

    @Test func classifiesTwilioErrors() async throws {
        try await withTwilio { server, client in
            for failure in [TwilioAPIServer.Failure.tooManyRequests, .serverError, .invalidTo] {
                server.failNext(failure)
                do throws(TwilioError) {
                    _ = try await client.sendMessage(to: Self.alice, from: "+15017122661", body: "x", statusCallback: nil)
                    Issue.record("\(failure.status) must fail")
                } catch {
                    #expect(error.kind == .api(status: failure.status, code: failure.code, message: failure.message))
                    #expect(error.isRetryable == (failure.status != 400))
                }
            }
        }
    }

    @Test func sendsAnIPCommandToTheSIMsDevicePort() async throws {
        try await withTwilio { server, client in
            let accepted = try await client.sendIPCommand(sim: "uno-1", payload: "LIG")
            #expect(accepted.sid.hasPrefix("HG"))
            #expect(server.ipCommands == [.init(sid: accepted.sid, sim: "uno-1", payload: "LIG", devicePort: "6969", payloadType: "text")])
        }
    }

    @Test func anUnreachableTwilioIsATransportErrorToRetry() async throws {
        let http = HTTPClient.shared
        let port = try freeLoopbackPort()
        let client = TwilioClient(
            credentials: TwilioCredentials(accountSid: Self.sid, authToken: Self.token), apiBase: "http://127.0.0.1:\(port)",
            superSimBase: "http://127.0.0.1:\(port)", timeout: .seconds(2), client: http)
        do throws(TwilioError) {
            _ = try await client.sendMessage(to: Self.alice, from: "+15017122661", body: "x", statusCallback: nil)
            Issue.record("nothing listens there")
        } catch {
            guard case .transport = error.kind else {
                Issue.record("expected a transport error, got \(error)")
                return
            }
            #expect(error.isRetryable && !error.certainlyNotSent)
        }
    }
}

@Suite(.serialized)
struct SMSOutboxTests {
    static let alice = PhoneNumber("+12065550100")!
    static let a = DeviceName("a")!

    func withOutbox(
        smsPerHour: Int = 30, credentials: Bool = true,
        _ body: (TwilioAPIServer, SMSOutbox) async throws -> Void
    ) async throws {
        let server = try await TwilioAPIServer.start(accountSid: TwilioClientTests.sid, authToken: TwilioClientTests.token)
        let http = HTTPClient.shared
        let client = TwilioClient(
            credentials: TwilioCredentials(accountSid: TwilioClientTests.sid, authToken: TwilioClientTests.token),
            apiBase: server.baseURL, superSimBase: server.baseURL, timeout: .seconds(5), client: http)
        var settings = SMSOutbox.Settings(from: "+15017122661", statusCallback: nil, smsPerHour: smsPerHour)
        settings.firstRetryDelay = .milliseconds(20)
        settings.retries = 3
        let outbox = SMSOutbox(client: credentials ? client : nil, settings: settings, logger: Logger(label: "test"))
        let running = Task { try await outbox.run() }
        do {
            try await body(server, outbox)
        } catch {
            Issue.record("\(error)")
        }
        running.cancel()
        await server.stop()
    }

    func settled(_ outbox: SMSOutbox, count: Int) async -> [OutboxEntry] {
        // Milliseconds alone; generous for the whole suite on two busy cores (a run once took
        // more than 10 s for three attempts 20 and 40 ms apart).
        _ = await waitUntil(timeout: .seconds(30)) {
            let entries = outbox.entries
            return entries.count >= count && entries.allSatisfy { $0.state != .pending }
        }
        return outbox.entries
    }

    @Test func retriesOn429And5xxThenSendsOnce() async throws {
        try await withOutbox { server, outbox in
            server.failNext(.tooManyRequests)
            server.failNext(.serverError)
            outbox.submit(OutboundSMS(to: Self.alice, body: "light low: 80", device: Self.a, origin: .alert))
            let entries = await settled(outbox, count: 1)
            #expect(entries.map(\.state) == [.accepted])
            #expect(entries.first?.attempts == 3)
            #expect(server.messages.map(\.body) == ["light low: 80"])
            #expect(outbox.lastNotified(Self.alice) == Self.a)
        }
    }

    @Test func doesNotRetryA400AndGivesTheBudgetBack() async throws {
        try await withOutbox(smsPerHour: 1) { server, outbox in
            server.failNext(.invalidTo)
            outbox.submit(OutboundSMS(to: Self.alice, body: "one", device: Self.a, origin: .device))
            outbox.submit(OutboundSMS(to: Self.alice, body: "two", device: Self.a, origin: .device))
            let entries = await settled(outbox, count: 2)
            #expect(entries.map(\.state) == [.failed, .accepted])
            #expect(entries.first?.attempts == 1)
            #expect(entries.first?.error?.contains("21211") == true)
            #expect(server.messages.map(\.body) == ["two"])
        }
    }

    @Test func neverExceedsTheHourlyBudget() async throws {
        try await withOutbox(smsPerHour: 3) { server, outbox in
            for index in 1...5 { outbox.submit(OutboundSMS(to: Self.alice, body: "sms \(index)", device: Self.a, origin: .device)) }
            let entries = await settled(outbox, count: 5)
            #expect(entries.map(\.state) == [.accepted, .accepted, .accepted, .overBudget, .overBudget])
            #expect(server.messages.count == 3)
            #expect(server.requestCount == 3)
        }
    }

    @Test func withoutCredentialsItIsADryRun() async throws {
        try await withOutbox(credentials: false) { server, outbox in
            outbox.submit(OutboundSMS(to: Self.alice, body: "dry", device: Self.a, origin: .manual))
            let entries = await settled(outbox, count: 1)
            #expect(entries.map(\.state) == [.dryRun])
            #expect(entries.first?.body == "dry" && entries.first?.to == "+12065550100")
            #expect(server.requestCount == 0)
        }
    }

    @Test func statusCallbacksUpdateTheOutbox() async throws {
        try await withOutbox { server, outbox in
            outbox.submit(OutboundSMS(to: Self.alice, body: "hi", device: Self.a, origin: .device))
            let entries = await settled(outbox, count: 1)
            let sid = try #require(entries.first?.sid)
            outbox.recordStatus(sid: sid, status: "delivered", errorCode: nil)
            #expect(outbox.entries.first?.twilioStatus == "delivered")
            #expect(outbox.statusCallbackCounts == ["delivered": 1])
        }
    }
}
