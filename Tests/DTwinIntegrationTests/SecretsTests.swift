import AsyncHTTPClient
import DTwinAWS
import DTwinMQTT
import DTwinTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Secrets (AWS keys and session token, the Twilio auth token, the API token) never appear in
/// the log, in an HTTP answer or on a topic — least of all when the services they unlock
/// refuse them, which is when a careless error message would quote them.
@Suite struct SecretsTests {
    static let awsSecret = "aws-SECRET-9f8e7d6c"
    static let sessionToken = "session-SECRET-5e6f7a8b"
    static let twilioToken = "twilio-SECRET-1a2b3c4d"
    static let apiToken = "api-SECRET-7g8h9i0j"
    static let accountSid = "AC" + String(repeating: "c", count: 32)

    @Test func secretsStayOutOfLogsAnswersAndTopicsWhenEveryServiceRefusesThem() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        // Both services know other secrets than the bridge has: every call is refused.
        let lambda = try await LambdaAPIServer.start(credentials: AWSCredentials(accessKeyId: "AKIDSECRETS", secretAccessKey: "another"))
        lambda.deploy("twin-ingest") { _ in .returned("{}") }
        let twilio = try await TwilioAPIServer.start(accountSid: Self.accountSid, authToken: "another-token")
        let directory = try makeTemporaryFolder("dtwin-secrets")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = directory.appendingPathComponent("dtwin.yaml")
        try """
        broker: \(broker.url)
        clientId: secrets-bridge
        logLevel: trace
        upstream:
          mode: lambda
          function: twin-ingest
          endpoint: \(lambda.endpoint)
        twilio:
          from: "+15017122661"
          apiBase: \(twilio.baseURL)
        devices:
          a:
            phones: ["+12065550100"]
        store:
          path: \(directory.appendingPathComponent("twin.sqlite").path)
        spool:
          path: \(directory.appendingPathComponent("spool").path)
        """.write(to: configuration, atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let environment = [
            "AWS_ACCESS_KEY_ID": "AKIDSECRETS", "AWS_SECRET_ACCESS_KEY": Self.awsSecret, "AWS_SESSION_TOKEN": Self.sessionToken,
            "TWILIO_ACCOUNT_SID": Self.accountSid, "TWILIO_AUTH_TOKEN": Self.twilioToken, "DTWIN_API_TOKEN": Self.apiToken,
            "DTWIN_HTTP_PORT": "\(port)", "HOME": "/nonexistent",
        ]
        let log = directory.appendingPathComponent("bridge.log")
        let watcher = try await MessageCollector(port: broker.port, filters: ["dtwin/#"])
        let bridge = try ChildProcess(
            executable: DTwinBinary.path, arguments: ["bridge", "--config", configuration.path],
            environment: DTwinBinary.cleanEnvironment.merging(environment) { $1 }, outputFile: log.path)
        #expect(await watcher.waitFor { $0.contains { $0.topic == "dtwin/bridge/status" && $0.payload == Array("online".utf8) } })

        // A reading (Lambda refuses the signature, again and again) and an SMS (Twilio refuses the auth).
        try await watcher.client.publish(topic: "dtwin/a/up", payload: Array("sim-a data 5".utf8))
        try await watcher.client.publish(topic: "dtwin/a/sms", payload: Array("door open".utf8))
        #expect(await waitUntil { lambda.refusals.count >= 2 && !twilio.refusals.isEmpty })

        var answers: [String] = []
        func call(_ method: HTTPMethod, _ path: String, bearer: String? = SecretsTests.apiToken) async throws {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            request.method = method
            if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            answers.append("\(response.headers)" + String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }
        try await call(.GET, "/api/outbox")
        try await call(.GET, "/api/devices")
        try await call(.POST, "/api/test-event")
        try await call(.GET, "/api/devices", bearer: "guess")
        try await call(.GET, "/readyz")
        try await call(.GET, "/metrics")
        try await call(.POST, "/twilio/sms")

        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(20)))
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        // The failures were logged and answered, so the test looked where secrets could leak.
        #expect(output.contains("InvalidSignatureException"), "\(output.suffix(2000))")
        #expect(output.contains("SMS not sent"), "\(output.suffix(2000))")
        #expect(answers[0].contains("\"state\":\"failed\""), "\(answers[0])")
        #expect(answers[2].contains("InvalidSignatureException"), "\(answers[2])")

        let topics = watcher.messages.map { $0.topic + " " + String(decoding: $0.payload, as: UTF8.self) }
        let basic = Data("\(Self.accountSid):\(Self.twilioToken)".utf8).base64EncodedString()
        for secret in [Self.awsSecret, Self.sessionToken, Self.twilioToken, Self.apiToken, basic] {
            #expect(!output.contains(secret), "the log shows \(secret)")
            #expect(!answers.contains { $0.contains(secret) }, "an HTTP answer shows \(secret)")
            #expect(!topics.contains { $0.contains(secret) }, "a topic shows \(secret)")
        }
        await watcher.close()
        await lambda.stop()
        await twilio.stop()
    }
}
