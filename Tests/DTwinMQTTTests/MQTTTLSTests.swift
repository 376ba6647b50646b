import DTwinMQTT
import DTwinTestSupport
import Foundation
import Logging
import Testing

/// `mqtts://` with a CA file and a user name and password, against a real TLS broker.
@Suite struct MQTTTLSTests {
    /// A throw-away CA and a server certificate for 127.0.0.1, made with the openssl command.
    struct Certificates {
        let directory: URL
        var ca: String { directory.appendingPathComponent("ca.crt").path }
        var otherCA: String { directory.appendingPathComponent("other-ca.crt").path }
        var certificate: String { directory.appendingPathComponent("server.crt").path }
        var key: String { directory.appendingPathComponent("server.key").path }
        var passwords: String { directory.appendingPathComponent("passwd").path }

        init() async throws {
            directory = try makeTemporaryFolder("dtwin-tls")
            let d = directory.path
            try await run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=dtwin test CA",
                    "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.crt",
                ])
            try await run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
                    "-keyout", "\(d)/other-ca.key", "-out", "\(d)/other-ca.crt",
                ])
            try await run(
                "/usr/bin/openssl",
                [
                    "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr",
                ])
            try "subjectAltName=IP:127.0.0.1,DNS:localhost\n".write(toFile: "\(d)/san.ext", atomically: true, encoding: .utf8)
            try await run(
                "/usr/bin/openssl",
                [
                    "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.crt", "-CAkey", "\(d)/ca.key",
                    "-CAcreateserial", "-days", "2", "-extfile", "\(d)/san.ext", "-out", "\(d)/server.crt",
                ])
            try await run("/usr/bin/mosquitto_passwd", ["-c", "-b", "\(d)/passwd", "bridge", "s3cret-pw"])
        }

        func run(_ tool: String, _ arguments: [String]) async throws {
            let child = try ChildProcess(executable: tool, arguments: arguments)
            guard await child.exited(within: .seconds(30)), child.exitCode == 0 else {
                throw TestSupportError("\(tool) \(arguments.first ?? "") failed")
            }
        }
    }

    func client(port: Int, ca: String?, password: String) throws -> MQTTClient {
        var logger = Logger(label: "tls-test")
        logger.logLevel = .critical
        var configuration = MQTTClientConfiguration(
            port: port, clientID: "tls-\(UUID().uuidString.prefix(6))", cleanSession: true, username: "bridge",
            password: password, tls: .init(caFile: ca))
        configuration.reconnectDelay = (.milliseconds(50), .milliseconds(200))
        return try MQTTClient(configuration: configuration, logger: logger)
    }

    @Test func tlsWithCAAndCredentials() async throws {
        let certificates = try await Certificates()
        defer { try? FileManager.default.removeItem(at: certificates.directory) }
        let broker = try MosquittoProcess(
            listenerOptions: [
                "cafile \(certificates.ca)", "certfile \(certificates.certificate)", "keyfile \(certificates.key)", "tls_version tlsv1.2",
            ],
            anonymous: false, extraConfiguration: ["password_file \(certificates.passwords)"])
        defer { broker.stop() }

        // The right CA and password: a working round trip over TLS.
        let good = try client(port: broker.port, ca: certificates.ca, password: "s3cret-pw")
        good.start()
        try await good.waitUntilConnected(timeout: .seconds(10), failFast: true)
        try await good.subscribe(["secure/#"])
        let received = ReceivedPayloads(good)
        try await good.publish(topic: "secure/a", payload: Array("over tls".utf8))
        #expect(await waitUntil { received.payloads == [Array("over tls".utf8)] })
        await good.close()

        // A wrong password: refused, and the error does not carry the password.
        let refused = try await connectionError(of: try client(port: broker.port, ca: certificates.ca, password: "guess"))
        #expect(refused?.code == .refused, "a wrong password must be refused")
        #expect(refused?.message.contains("guess") == false)

        // A CA that did not sign the broker's certificate: a TLS failure.
        let untrusted = try await connectionError(of: try client(port: broker.port, ca: certificates.otherCA, password: "s3cret-pw"))
        #expect(untrusted?.code == .tls, "a certificate the CA did not sign must fail TLS")
    }

    @Test func aMissingCAFileIsAClearError() throws {
        #expect(throws: MQTTError.self) {
            _ = try client(port: 8883, ca: "/nonexistent/ca.pem", password: "x")
        }
    }
}
