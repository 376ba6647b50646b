import DTwinContract
import DTwinMQTT
import DTwinTestSupport
import Foundation
import Testing

/// broker-config/: setup.sh, add-device.sh and remove-device.sh, and the policy they generate,
/// checked against a real mosquitto running from the generated directory.
@Suite struct BrokerConfigTests {
    static let allowedTopics = ["dtwin/+/up", "dtwin/+/status", "dtwin/+/sms", "dtwin/bridge/#"]

    @Test func setupMakesTheDirectoryAndARerunKeepsItsCredentials() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-setup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ name: String) -> URL { directory.appendingPathComponent(name) }
        func read(_ name: String) throws -> String { try String(contentsOf: file(name), encoding: .utf8) }
        func mode(_ name: String) throws -> Int {
            try (FileManager.default.attributesOfItem(atPath: file(name).path)[.posixPermissions] as? Int) ?? -1
        }
        let ports = GeneratedBroker.ports((21883, 28883))
        let first = try await GeneratedBroker.script("setup.sh", ["--host", "gw1.test", directory.path], environment: ports)
        #expect(first.code == 0, "\(first.errors)")
        for name in ["mosquitto.conf", "acl", "passwd", "bridge.env", "operator.env", "tls/ca.crt", "tls/ca.key", "tls/server.crt", "tls/server.key"]
        {
            #expect(FileManager.default.fileExists(atPath: file(name).path), "\(name) missing")
        }
        for secret in ["passwd", "bridge.env", "operator.env", "tls/ca.key", "tls/server.key"] {
            #expect(try mode(secret) == 0o600, "\(secret) must be readable by its owner only")
        }
        let bridgeEnvironment = try read("bridge.env")
        let bridgeURL = try BrokerURL(parsing: try GeneratedBroker.bridgeURL(in: directory))
        #expect(bridgeURL == BrokerURL(host: "127.0.0.1", port: 21883, username: "dtwin-bridge", password: bridgeURL.password))
        let configuration = try read("mosquitto.conf")
        #expect(configuration.contains("listener 21883 127.0.0.1"))
        #expect(configuration.contains("listener 28883\n"))
        // The bridge's password is in bridge.env only: setup.sh does not print it.
        let password = try #require(bridgeURL.password)
        #expect(password.count == 24)
        #expect(!(first.output + first.errors).contains(password))
        let operatorURL = try BrokerURL(parsing: try GeneratedBroker.bridgeURL(in: directory, file: "operator.env"))
        #expect(operatorURL.username == "dtwin-operator" && operatorURL.password?.count == 24 && operatorURL.password != password)
        let operatorEnvironment = try read("operator.env")

        // The server certificate names the host, localhost and 127.0.0.1, signed by the CA.
        let certificate = try await GeneratedBroker.run("/usr/bin/openssl", ["x509", "-in", file("tls/server.crt").path, "-noout", "-text"])
        #expect(certificate.output.contains("DNS:gw1.test"))
        #expect(certificate.output.contains("DNS:localhost"))
        #expect(certificate.output.contains("IP Address:127.0.0.1"))
        let verify = try await GeneratedBroker.run(
            "/usr/bin/openssl", ["verify", "-CAfile", file("tls/ca.crt").path, file("tls/server.crt").path])
        #expect(verify.code == 0, "\(verify.output)\(verify.errors)")

        // Again, same host: nothing secret changes.
        let (ca, key, passwords) = (try read("tls/ca.crt"), try read("tls/server.key"), try read("passwd"))
        #expect(try await GeneratedBroker.script("setup.sh", [directory.path], environment: ports).code == 0)
        #expect(try read("bridge.env") == bridgeEnvironment)
        #expect(try read("operator.env") == operatorEnvironment)
        #expect(try read("passwd") == passwords)
        #expect(try read("tls/ca.crt") == ca)
        #expect(try read("tls/server.key") == key)

        // Another host and port: a new server certificate from the same CA, the same password.
        let moved = GeneratedBroker.ports((21884, 28883))
        #expect(try await GeneratedBroker.script("setup.sh", ["--host", "gw2.test", directory.path], environment: moved).code == 0)
        #expect(try read("tls/ca.crt") == ca)
        #expect(try read("tls/server.key") != key)
        #expect(try read("bridge.env").contains("dtwin-bridge:\(password)@127.0.0.1:21884"))
        let renewed = try await GeneratedBroker.run("/usr/bin/openssl", ["x509", "-in", file("tls/server.crt").path, "-noout", "-text"])
        #expect(renewed.output.contains("DNS:gw2.test"))

        // Mistakes get one clear line and a non-zero exit.
        let noDirectory = try await GeneratedBroker.script("setup.sh", [])
        #expect(noDirectory.code == 2)
        #expect(noDirectory.errors.contains("usage:"))
        let badPort = try await GeneratedBroker.script("setup.sh", [directory.path], environment: ["MQTT_PORT": "http"])
        #expect(badPort.code == 1)
        #expect(badPort.errors.contains("'http' is not a port number"))
    }

    /// `mosquitto_passwd -b USER PASSWORD` shows the password to every local user (`ps`).
    @Test func noScriptPutsAPasswordOnACommandLine() throws {
        for script in ["setup.sh", "add-device.sh", "remove-device.sh", "lib.sh"] {
            let text = try String(contentsOf: ProjectFolder.file("broker-config/\(script)"), encoding: .utf8)
            #expect(!text.contains("mosquitto_passwd -b"), "\(script)")
        }
    }

    @Test func addAndRemoveDevicesValidateNamesAndPrintThePasswordOnce() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let dir = generated.directory.path
        let added = try await GeneratedBroker.script("add-device.sh", [dir, "uno1"])
        #expect(added.code == 0)
        let password = added.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count == 24 && password.allSatisfy { $0.isLetter || $0.isNumber }, "stdout is the password alone")
        #expect(!added.errors.contains(password))
        #expect(added.errors.contains("uno1"))
        let stored = try String(contentsOf: generated.directory.appendingPathComponent("passwd"), encoding: .utf8)
        #expect(stored.contains("uno1:$7$"), "the password file keeps a hash")
        #expect(!stored.contains(password))

        for (name, reason) in [
            ("a/b", "not a valid device name"), ("#", "not a valid device name"), ("", "not a valid device name"),
            (String(repeating: "x", count: 65), "not a valid device name"), ("bridge", "reserved"), ("dtwin-bridge", "the bridge's own"),
            ("dtwin-operator", "the operator's user name"),
        ] {
            let refused = try await GeneratedBroker.script("add-device.sh", [dir, name])
            #expect(refused.code == 1, "\(name)")
            #expect(refused.errors.contains(reason), "\(name): \(refused.errors)")
            #expect(refused.output.isEmpty)
        }
        let again = try await GeneratedBroker.script("add-device.sh", [dir, "uno1"])
        #expect(again.code == 1)
        #expect(again.errors.contains("--rotate"))
        #expect(try await GeneratedBroker.script("add-device.sh", [dir]).code == 2)
        #expect(try await GeneratedBroker.script("add-device.sh", ["/nonexistent", "uno1"]).errors.contains("not a broker directory"))
        #expect(try await GeneratedBroker.script("remove-device.sh", [dir, "ghost"]).errors.contains("has no credential"))
        #expect(try await GeneratedBroker.script("add-device.sh", ["--rotate", dir, "ghost"]).errors.contains("no credential to rotate"))
        // The sketch's header (--arduino): nowhere to write it is refused before any credential
        // is made; written, it is private and holds what the sketch needs (the firmware's
        // simavr test builds and connects with one).
        let nowhere = try await GeneratedBroker.script("add-device.sh", ["--arduino-header", "/nonexistent/dtwin_secrets.h", dir, "uno2"])
        #expect(nowhere.code == 1 && nowhere.errors.contains("no folder for the sketch's header"), "\(nowhere.errors)")
        let header = generated.directory.appendingPathComponent("uno2-secrets.h")
        let provisioned = try await GeneratedBroker.script("add-device.sh", ["--arduino-header", header.path, dir, "uno2"])
        #expect(provisioned.code == 0, "uno2 was not added by the refused run: \(provisioned.errors)")
        let text = try String(contentsOf: header, encoding: .utf8)
        let ca = try String(contentsOf: generated.directory.appendingPathComponent("tls/ca.crt"), encoding: .utf8)
        #expect(text.contains("#define DTWIN_MQTT_PASSWORD \"\(provisioned.output.trimmingCharacters(in: .whitespacesAndNewlines))\""))
        #expect(text.contains("#define DTWIN_TLS 1") && text.contains("#define DTWIN_BROKER_HOST \"gateway.test\""))
        let firstLine = ca.split(separator: "\n")[1]
        #expect(text.contains("    \"\(firstLine)\\n\" \\"), "the CA, line by line, as C strings")
        let mode = try FileManager.default.attributesOfItem(atPath: header.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // Rotation: the new password logs in, the old one no longer does (the running broker
        // reloaded on SIGHUP).
        // A connection made with the old password is closed by the reload too.
        let before = try await MessageCollector(configuration: generated.device("uno1", password: password), filters: [])
        let rotated = try await generated.addDevice("uno1", rotate: true)
        #expect(rotated != password)
        #expect(await waitUntil(timeout: .seconds(5)) { !before.client.isConnected }, "the old password's connection stayed")
        await before.close()
        #expect(try await GeneratedBroker.connectionError(generated.device("uno1", password: rotated)) == nil)
        #expect(try await GeneratedBroker.connectionError(generated.device("uno1", password: password))?.code == .refused)

        // Removal: the device's connection is closed and it is refused from then on.
        let connected = try await MessageCollector(configuration: generated.device("uno1", password: rotated), filters: [])
        let removed = try await GeneratedBroker.script("remove-device.sh", [dir, "uno1"])
        #expect(removed.code == 0)
        #expect(removed.errors.contains("reloaded"))
        #expect(await waitUntil(timeout: .seconds(5)) { !connected.client.isConnected }, "a removed device stayed connected")
        await connected.close()
        #expect(try await GeneratedBroker.connectionError(generated.device("uno1", password: rotated))?.code == .refused)
    }

    @Test func theGeneratedPolicyLetsADeviceSpeakOnlyForItself() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let passwordA = try await generated.addDevice("a")

        // Nobody gets in without the right credential, on either listener.
        var anonymous = try generated.bridge()
        (anonymous.username, anonymous.password) = (nil, nil)
        #expect(try await GeneratedBroker.connectionError(anonymous)?.code == .refused, "anonymous must be refused")
        var anonymousDevice = generated.device("a", password: passwordA)
        (anonymousDevice.username, anonymousDevice.password) = (nil, nil)
        #expect(try await GeneratedBroker.connectionError(anonymousDevice)?.code == .refused)
        #expect(try await GeneratedBroker.connectionError(generated.device("a", password: "wrong-password"))?.code == .refused)
        var wrongBridge = try generated.bridge()
        wrongBridge.password = "wrong-password"
        #expect(try await GeneratedBroker.connectionError(wrongBridge)?.code == .refused)
        // The device port is TLS only, and a device that does not trust the CA does not connect.
        var plain = generated.device("a", password: passwordA)
        plain.tls = nil
        #expect(try await GeneratedBroker.connectionError(plain) != nil, "plain MQTT on the TLS port must fail")
        let otherCA = generated.directory.appendingPathComponent("other-ca.crt")
        _ = try await GeneratedBroker.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                "-keyout", "/dev/null", "-out", otherCA.path,
            ])
        #expect(try await GeneratedBroker.connectionError(generated.device("a", password: passwordA, ca: otherCA.path))?.code == .tls)

        // TLS 1.2 and 1.3 are spoken, 1.1 is not (OpenSSL is allowed 1.1 here so that the
        // broker, not the client, is what refuses it).
        for (version, accepted) in [("-tls1_3", true), ("-tls1_2", true), ("-tls1_1", false)] {
            let handshake = try await GeneratedBroker.run(
                "/usr/bin/openssl",
                [
                    "s_client", "-connect", "127.0.0.1:\(generated.mqttsPort)", version, "-CAfile", generated.ca,
                    "-verify_return_error", "-verify_hostname", "localhost", "-cipher", "DEFAULT:@SECLEVEL=0",
                ])
            #expect((handshake.code == 0) == accepted, "\(version): \(handshake.errors.suffix(300))")
            if accepted { #expect(handshake.output.contains("Verify return code: 0 (ok)")) }
        }

        // b joins while the broker runs: the broker reloads on add-device.sh's SIGHUP.
        let passwordB = try await generated.addDevice("b")
        let bridge = try await MessageCollector(configuration: try generated.bridge(), filters: Self.allowedTopics)
        let deviceA = try await MessageCollector(
            configuration: generated.device("a", password: passwordA), filters: ["dtwin/#", "dtwin/b/down", "dtwin/a/down"])
        let deviceB = try await MessageCollector(configuration: generated.device("b", password: passwordB), filters: ["dtwin/b/down"])

        // a forging b's reading, the bridge's status and b's command reaches nobody, and over
        // MQTT 5 the broker says so (PUBACK reason 135); a's own reading reaches the bridge
        // (QoS 1, in order: the forgeries would have come first).
        for forged in ["dtwin/b/up", "dtwin/bridge/status", "dtwin/b/down"] {
            do {
                try await deviceA.client.publish(topic: forged, payload: Array("sim-b data 666".utf8))
                Issue.record("the broker acknowledged a's publish on \(forged) as taken")
            } catch let error as MQTTError {
                #expect(error.code == .publishRefused && error.message.contains("Not authorized (135)"), "\(error)")
            }
        }
        try await deviceA.client.publish(topic: "dtwin/a/status", payload: Array("online".utf8), retain: true)
        try await deviceA.client.publish(topic: "dtwin/a/up", payload: Array("sim-a data 42".utf8))
        #expect(await bridge.waitFor { $0.contains { $0.topic == "dtwin/a/up" && $0.payload == Array("sim-a data 42".utf8) } })
        #expect(bridge.messages.map(\.topic) == ["dtwin/a/status", "dtwin/a/up"])

        // The bridge commands b, then a: each device receives its own command only, even
        // though a subscribed to everything and to b's command topic.
        let bridgeClient = bridge.client
        try await bridgeClient.publish(topic: "dtwin/b/down", payload: Array("LIG".utf8))
        try await bridgeClient.publish(topic: "dtwin/a/down", payload: Array("ACK".utf8))
        #expect(await deviceB.waitFor { $0.contains { $0.payload == Array("LIG".utf8) } })
        #expect(await deviceA.waitFor { $0.contains { $0.topic == "dtwin/a/down" } })
        // (MQTT 5 delivers a's command once per matching subscription: dtwin/# and dtwin/a/down.)
        #expect(Set(deviceA.messages.map(\.topic)) == ["dtwin/a/down"], "a must receive nothing of b's")
        #expect(deviceA.messages.first?.payload == Array("ACK".utf8))
        #expect(deviceB.messages.map(\.payload) == [Array("LIG".utf8)], "b received a's forged command")

        // A device's client id is its user name: a connecting as client id "b" does not throw
        // b off the broker.
        await deviceA.close()
        let impostor = try await MessageCollector(configuration: generated.device("a", password: passwordA, clientID: "b"), filters: [])
        try await bridgeClient.publish(topic: "dtwin/b/down", payload: Array("ACK".utf8))
        #expect(await deviceB.waitFor { $0.count == 2 })
        #expect(deviceB.client.isConnected)
        #expect(!generated.broker.log.contains("Client b already connected"))
        for collector in [impostor, deviceB, bridge] { await collector.close() }
    }

    @Test func aBrokerRestartKeepsAPersistentSessionsQueuedMessages() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let password = try await generated.addDevice("a")
        let session = try generated.bridge(clientID: "persistent-bridge", cleanSession: false)
        let first = try await MessageCollector(configuration: session, filters: ["dtwin/+/up"])
        await first.close()

        let device = try await MessageCollector(configuration: generated.device("a", password: password), filters: [])
        for n in 1...5 { try await device.client.publish(topic: "dtwin/a/up", payload: Array("sim-a data \(n)".utf8)) }
        await device.close()
        generated.broker.stop()
        try generated.broker.start()

        let again = try await MessageCollector(configuration: session, filters: [])
        #expect(await again.waitFor { $0.count >= 5 })
        #expect(again.messages.map { String(decoding: $0.payload, as: UTF8.self) } == (1...5).map { "sim-a data \($0)" })
        await again.close()
    }

    @Test func theBridgeRunsOnTheGeneratedBrokerWithItsCredentials() async throws {
        let generated = try await GeneratedBroker()
        defer { generated.stop() }
        let password = try await generated.addDevice("uno1")
        let running = try generated.startBridge()
        let (bridge, log, environment) = (running.process, running.log, running.environment)
        defer { bridge.signal(SIGKILL) }
        let status = try await MessageCollector(configuration: try generated.bridge(), filters: ["dtwin/bridge/status"])
        #expect(await status.waitFor { $0.last?.payload == Array("online".utf8) }, "the bridge never came online")

        // A reading from the device over TLS is stored by the bridge.
        let device = try await MessageCollector(configuration: generated.device("uno1", password: password), filters: ["dtwin/uno1/down"])
        try await device.client.publish(topic: "dtwin/uno1/up", payload: Array("sim-uno1 data 512".utf8))
        var stored = ""
        _ = await waitUntil(timeout: .seconds(15), interval: .milliseconds(200)) {
            stored = (try? await DTwinBinary.run(["readings", "uno1", "--json"], environment: environment))?.output ?? ""
            return stored.contains("512")
        }
        #expect(stored.contains("\"value\":512"), "\(stored)")

        // A command with the bridge's credentials reaches the device.
        let sent = try await DTwinBinary.run(["send", "uno1", "LIG", "--broker", try generated.bridgeURL])
        #expect(sent.code == 0, "\(sent.output)")
        #expect(await device.waitFor { $0.contains { $0.payload == Array("LIG".utf8) } })

        bridge.signal(SIGTERM)
        #expect(await bridge.exited(within: .seconds(15)))
        #expect(bridge.exitCode == 0)
        #expect(await status.waitFor { $0.last?.payload == Array("offline".utf8) })
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(!output.contains(try generated.bridgePassword), "the bridge logged its broker password")
        await device.close()
        await status.close()
    }
}
