import DTwinConfig
import DTwinContract
import Foundation
import Testing

@Suite struct ConfigurationLoaderTests {
    func load(_ yaml: String?, _ environment: [String: String] = [:]) throws -> ConfigurationLoader.Loaded {
        try ConfigurationLoader.load(yaml: yaml, source: "test.yaml", environment: environment)
    }

    func error(_ yaml: String?, _ environment: [String: String] = [:]) -> ConfigurationError? {
        do {
            _ = try load(yaml, environment)
            return nil
        } catch {
            return error as? ConfigurationError
        }
    }

    @Test func embeddedDefaultsAreTheDesignDefaults() throws {
        let config = try load(nil).configuration
        #expect(config.broker == BrokerURL(host: "127.0.0.1", port: 1883))
        #expect(config.topicPrefix.prefix == "dtwin")
        #expect(config.clientId == "dtwin-bridge")
        #expect(config.upstream.mode == .local)
        #expect(config.upstream.method == .get)
        #expect(config.upstream.timeout == .seconds(10))
        #expect(config.store.kind == .sqlite)
        #expect(config.store.path == "dtwin.sqlite")
        #expect(config.store.table == "digitaltwin")
        #expect(config.store.region == "us-west-2")
        #expect(config.http.host == "127.0.0.1")
        #expect(config.http.port == 8080)
        #expect(config.twilio.apiBase == "https://api.twilio.com")
        #expect(config.twilio.superSimBase == "https://supersim.twilio.com")
        #expect(config.twilio.smsPerHour == 30)
        #expect(config.spool.path == "dtwin-spool")
        #expect(config.spool.maxBytes == 256_000_000)
        #expect(config.maxPayload == 256 * 1024)
    }

    @Test func theDesignDocumentsExampleLoads() throws {
        let design = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/DESIGN.md")
        let text = try String(contentsOf: design, encoding: .utf8)
        let start = try #require(text.range(of: "```yaml\n"))
        let end = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let config = try load(String(text[start.upperBound..<end.lowerBound])).configuration
        let a = try DeviceName(validating: "a")
        #expect(config.devices[a]?.phones == ["+12065550100"])
        #expect(config.devices[a]?.cellular == false)
        #expect(config.alerts.count == 1)
        #expect(config.alerts.first?.below == 100)
        #expect(config.alerts.first?.cooldown == .seconds(600))
        #expect(config.alerts.first?.text == "{device} light low: {value}")
    }

    @Test func readsEveryKindOfValue() throws {
        let config = try load(
            """
            broker: mqtts://bridge:pw@broker.example:8883
            ca: /etc/dtwin/ca.pem
            topicPrefix: lab/dtwin
            upstream:
              mode: apigw
              url: https://abc.execute-api.us-west-2.amazonaws.com/prod/digitaltwin
              method: post
              timeout: 2.5s
              concurrency: 8
              retry: {initial: 50ms, max: 5s, maxAge: 1h}
            maxPayload: 1KiB
            shutdownTimeout: 3s
            logLevel: debug
            """
        ).configuration
        #expect(config.broker.tls && config.broker.password == "pw")
        #expect(config.ca == "/etc/dtwin/ca.pem")
        #expect(config.topicPrefix.prefix == "lab/dtwin")
        #expect(config.upstream.mode == .apigw)
        #expect(config.upstream.method == .post)
        #expect(config.upstream.timeout == .milliseconds(2500))
        #expect(config.upstream.concurrency == 8)
        #expect(config.upstream.retry.initial == .milliseconds(50))
        #expect(config.upstream.retry.maxAge == .seconds(3600))
        #expect(config.maxPayload == 1024)
        #expect(config.shutdownTimeout == .seconds(3))
        #expect(config.logLevel == .debug)
    }

    @Test func anEmptyFileIsTheDefaults() throws {
        #expect(try load("").configuration == DTwinConfiguration())
        #expect(try load("# nothing here\n").configuration == DTwinConfiguration())
    }

    /// `devices.<dev>.twin`: the desired keys a device takes and their commands (issue 19).
    @Test func aDevicesTwinKeysAndTheirCommandsAreConfigured() throws {
        let yaml = """
            devices:
              fan1:
                twin:
                  fan: {on: "FAN 1", off: "FAN 0"}
                  speed: {command: "SPEED {value}", min: 1, max: 5}
                  label: {command: "SAY {value}", type: text}
                twinTimeout: 10m
              uno1: {}
            """
        let devices = try load(yaml).configuration.devices
        let schema = try #require(devices[DeviceName("fan1")!]).twinSchema
        #expect(schema.command(for: "fan", value: .bool(true)) == .success("FAN 1"))
        #expect(schema.command(for: "speed", value: .number(3)) == .success("SPEED 3"))
        #expect(schema.command(for: "speed", value: .number(9)) == .failure(.invalid("speed must be a whole number from 1 to 5, not 9")))
        #expect(schema.command(for: "label", value: .string("hi")) == .success("SAY hi"))
        #expect(schema.pendingTimeoutMillis == 600_000)
        #expect(devices[DeviceName("uno1")!]?.twinSchema == .uno, "without settings, the UNO sketch's keys")
        for (entry, words) in [
            ("fan: LIG", "must map desired keys to commands"),
            ("fan: {on: LIG}", "must map desired keys to commands"),
            ("fan: {command: FAN}", "must map desired keys to commands"),
            ("fan: {on: LIG, off: \"\"}", "the command is empty"),
            ("speed: {command: \"S {value}\", min: 5, max: 1}", "min <= max"),
            ("speed: {command: \"S {value}\", type: colour}", "type must be integer"),
            ("bad-key: {on: A, off: B}", "letters, digits or _"),
        ] {
            let refused = error("devices:\n  fan1:\n    twin:\n      \(entry)\n")
            #expect(
                refused?.key.hasPrefix("devices.fan1.twin") == true && refused?.message.contains(words) == true,
                "\(entry): \(String(describing: refused))")
        }
        #expect(error("devices:\n  fan1:\n    twinTimeout: 0s\n")?.key == "devices.fan1.twinTimeout")
    }

    @Test func unknownKeysAreErrorsThatNameTheKeyAndSuggest() throws {
        let top = try #require(error("brokr: mqtt://x\n"))
        #expect(top.key == "brokr")
        #expect(top.description.contains("did you mean broker"))
        #expect(top.description.contains("test.yaml line 1"))
        let nested = try #require(error("upstream:\n  mode: local\n  tiemout: 5s\n"))
        #expect(nested.key == "upstream.tiemout")
        #expect(nested.description.contains("upstream.timeout"))
        #expect(nested.description.contains("line 3"))
    }

    @Test(arguments: [
        ("upstream:\n  mode: kafka\n", "upstream.mode", "one of local, apigw, lambda"),
        ("upstream:\n  timeout: soon\n", "upstream.timeout", "duration"),
        ("http:\n  port: 70000\n", "http.port", "0 to 65535"),
        ("broker: http://x\n", "broker", "mqtt://"),
        ("topicPrefix: a/#\n", "topicPrefix", "wildcard"),
        ("maxPayload: lots\n", "maxPayload", "size"),
        ("upstream: [1, 2]\n", "upstream", "mapping"),
        ("upstream:\n  mode: [local]\n", "upstream.mode", "single value"),
        ("upstream:\n  mode: apigw\n", "upstream.url", "required"),
        ("upstream:\n  mode: lambda\n", "upstream.function", "required"),
        ("upstream:\n  url: ftp://x\n", "upstream.url", "http"),
        ("devices:\n  a/b:\n    reply: X\n", "devices.a/b", "invalid device name"),
        ("devices:\n  a:\n    phones: [\"555\"]\n", "devices.a.phones", "E.164"),
        ("devices:\n  a:\n    colour: red\n", "devices.a.colour", "unknown key"),
        ("alerts:\n  - device: a\n    text: hi\n", "alerts[0]", "below or above"),
        ("alerts:\n  - device: '#'\n    below: 1\n", "alerts[0].device", "device name"),
        ("ca: /x.pem\n", "ca", "mqtts"),
        ("upstream:\n  auth: sigv2\n", "upstream.auth", "one of none, iam"),
        ("sharedGroup: dtwin\n", "instance", "is required with sharedGroup"),
        ("instance: gw/2\nsharedGroup: dtwin\n", "instance", "allowed are A-Z a-z 0-9 _ -"),
        ("instance: gw2\nsharedGroup: a+b\n", "sharedGroup", "allowed are A-Z a-z 0-9 _ -"),
        ("upstream:\n  auth: iam\n", "upstream.auth", "sends nothing upstream"),
        ("upstream:\n  mode: lambda\n  function: f\n  auth: iam\n", "upstream.auth", "always signed"),
        ("{{{", "config", "YAML"),
    ])
    func badValuesAreErrorsThatNameTheKey(_ yaml: String, _ key: String, _ words: String) throws {
        let problem = try #require(error(yaml), "\(yaml) was accepted")
        #expect(problem.key == key)
        #expect(problem.description.contains(words), "\(problem.description)")
    }

    /// One phone-number rule: what the configuration accepts is what the Twilio side accepts.
    @Test(arguments: ["+12065550100", "+1 206 555 0100", "+1 (206) 555-0100", "+123456", "+1234567", "+1234567890123456", "12065550100"])
    func theConfigurationAcceptsExactlyThePhoneNumbersTwilioDoes(_ phone: String) throws {
        let accepted = error("devices:\n  a:\n    phones: [\"\(phone)\"]\n") == nil
        #expect(accepted == (PhoneNumber(phone) != nil), "\(phone)")
        #expect(accepted == ["+12065550100", "+1 206 555 0100", "+1 (206) 555-0100", "+1234567"].contains(phone), "\(phone)")
    }

    @Test func theCloudStacksOutputLinesLoad() throws {
        // What cloud/template.yaml's DtwinConfiguration output prints, filled in for a stack.
        let yaml = """
            upstream:
              mode: apigw
              url: https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/bridge
              method: POST
              auth: iam
            store:
              kind: dynamodb
              table: digitaltwin
              region: eu-west-1
            """
        let config = try load(yaml).configuration
        #expect(config.upstream.auth == .iam && config.upstream.method == .post && config.upstream.mode == .apigw)
        #expect(config.store.kind == .dynamodb && config.store.region == "eu-west-1")
        #expect(try load(nil).configuration.upstream.auth == DTwinConfiguration.UpstreamAuth.none)
        #expect(
            try load(nil, ["DTWIN_UPSTREAM_MODE": "apigw", "DTWIN_UPSTREAM_URL": "https://x/y", "DTWIN_UPSTREAM_AUTH": "iam"])
                .configuration.upstream.auth == .iam)
    }

    @Test func environmentOverridesTheFile() throws {
        let loaded = try load(
            "upstream:\n  mode: local\n",
            [
                "DTWIN_UPSTREAM_MODE": "apigw", "DTWIN_UPSTREAM_URL": "http://127.0.0.1:9/x",
                "DTWIN_BROKER": "mqtt://10.0.0.9:1884", "DTWIN_HTTP_PUBLICURL": "https://gw.example/",
                "DTWIN_UPSTREAM_RETRY_MAXAGE": "90s", "DTWIN_TOPICPREFIX": "t",
            ])
        let config = loaded.configuration
        #expect(config.upstream.mode == .apigw)
        #expect(config.upstream.url == "http://127.0.0.1:9/x")
        #expect(config.broker.port == 1884)
        #expect(config.http.publicURL == "https://gw.example/")
        #expect(config.upstream.retry.maxAge == .seconds(90))
        #expect(config.topicPrefix.prefix == "t")
        #expect(loaded.warnings.isEmpty)
    }

    @Test func aBadEnvironmentValueNamesTheVariable() throws {
        let problem = try #require(error(nil, ["DTWIN_HTTP_PORT": "eighty"]))
        #expect(problem.key == "http.port")
        #expect(problem.description.contains("DTWIN_HTTP_PORT"))
    }

    @Test func devicesAndAlertsFromTheEnvironment() throws {
        let config = try load(
            nil,
            [
                "DTWIN_DEVICES": #"{"uno1": {"phones": ["+12065550100"], "reply": "LIG"}}"#,
                "DTWIN_ALERTS": #"[{"device": "*", "above": 900, "text": "bright"}]"#,
            ]
        ).configuration
        #expect(config.devices[try DeviceName(validating: "uno1")]?.reply == "LIG")
        #expect(config.alerts.first?.above == 900)
    }

    @Test func unknownDTwinVariablesAreWarnedAbout() throws {
        let loaded = try load(nil, ["DTWIN_UPSTREAM_URLL": "x", "DTWIN_API_TOKEN": "t", "DTWIN_CONFIG": "", "HOME": "/root"])
        #expect(loaded.warnings.count == 1)
        #expect(loaded.warnings.first?.contains("DTWIN_UPSTREAM_URLL") == true)
        #expect(loaded.warnings.first?.contains("did you mean DTWIN_UPSTREAM_URL?") == true)
    }

    @Test func secretsInTheBrokerURLNeverAppearInErrors() throws {
        let problem = try #require(error("broker: mqtt://user:hunter2@host:port\n"))
        #expect(!problem.description.contains("hunter2"))
    }

    @Test func aMissingExplicitFileIsAnError() throws {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(path: "/nonexistent/dtwin.yaml", environment: [:])
        }
    }

    @Test func aFileIsReadFromItsPath() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("dtwin-\(UUID().uuidString).yaml")
        try "clientId: from-file\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let loaded = try ConfigurationLoader.load(path: nil, environment: ["DTWIN_CONFIG": file.path])
        #expect(loaded.configuration.clientId == "from-file")
        #expect(loaded.file == file.path)
    }

    /// Several bridges on a shared subscription: each its own client id, session and spool,
    /// beside the others in one working folder (README: "Several instances").
    @Test func anInstanceHasItsOwnClientIdAndSpool() throws {
        let alone = try ConfigurationLoader.load(yaml: "spool:\n  path: /var/lib/dtwin/spool/\n", source: "t.yaml", environment: [:])
        #expect(alone.configuration.bridgeClientId == "dtwin-bridge" && alone.configuration.spoolFolder == "/var/lib/dtwin/spool")
        let loaded = try ConfigurationLoader.load(
            yaml: "spool:\n  path: /var/lib/dtwin/spool/\n", source: "t.yaml",
            environment: ["DTWIN_INSTANCE": "gw-2", "DTWIN_SHAREDGROUP": "dtwin"])
        #expect(loaded.configuration.instance == "gw-2" && loaded.configuration.sharedGroup == "dtwin")
        #expect(loaded.configuration.bridgeClientId == "dtwin-bridge-gw-2")
        #expect(loaded.configuration.spoolFolder == "/var/lib/dtwin/spool-gw-2")
    }
}
