import DTwinApp
import DTwinConfig
import DTwinContract
import DTwinInspect
import DTwinMQTT
import DTwinStore
import DTwinTestSupport
import Foundation
import Testing

/// What a newcomer meets first, through the real binary: the bridge's first lines, a broker that
/// is not there, help and mistyped commands, an empty readings answer, a replay of a recording.
@Suite struct FirstRunTests {
    func temporaryDirectory() throws -> URL { try makeTemporaryFolder("dtwin-first") }

    /// The first lines name the file, the absolute store and spool paths, the HTTP address, the
    /// API's state and the upstream, and never a secret; a broker that is away is said again
    /// and again, with where to fix its address.
    @Test func theBridgeSaysWhatItLoadedAndKeepsSayingTheBrokerIsAway() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = try freeLoopbackPort()
        // Relative paths, resolved in the bridge's working folder.
        try "store:\n  path: twin.sqlite\nspool:\n  path: spool\nhttp:\n  port: 0\n".write(
            to: directory.appendingPathComponent("dtwin.yaml"), atomically: true, encoding: .utf8)
        let environment = [
            "DTWIN_BROKER": "mqtt://gw:hunter2@127.0.0.1:\(port)", "DTWIN_API_TOKEN": "api-secret-9", "DTWIN_SHUTDOWNTIMEOUT": "2s",
        ]
        let bridge = try RunningDTwin(["bridge"], environment: environment, workingDirectory: directory.path)
        // Warnings at once, then after 2 s and 4 s: three within about six seconds.
        let repeated = await waitUntil(timeout: .seconds(15)) {
            bridge.output.components(separatedBy: "MQTT broker not reachable").count - 1 >= 3
        }
        bridge.process.signal(SIGTERM)
        #expect(await bridge.finish() == 0, "\(bridge.output)")
        let output = bridge.output
        #expect(repeated, "\(output)")
        let folder = directory.standardizedFileURL.path
        for line in [
            "bridge starting with configuration \(folder)/dtwin.yaml, overridden by DTWIN_BROKER, DTWIN_SHUTDOWNTIMEOUT",
            "broker mqtt://gw:***@127.0.0.1:\(port) as client id dtwin-bridge",
            "upstream: local", "store: SQLite \(folder)/twin.sqlite, table digitaltwin", "spool: \(folder)/spool (sync normal",
            "HTTP: http://127.0.0.1:0", "API /api enabled (DTWIN_API_TOKEN)", "Twilio: dry run",
        ] {
            #expect(output.contains(line), "missing \(line.debugDescription) in:\n\(output)")
        }
        #expect(output.contains("hint=is the broker running and listening there? The address is `broker` in the configuration"))
        #expect(!output.contains("hunter2") && !output.contains("api-secret-9"))
        let starting = try #require(output.split(separator: "\n").firstIndex { $0.contains("bridge starting") })
        let listening = try #require(output.split(separator: "\n").firstIndex { $0.contains("HTTP server listening") })
        #expect(starting < listening, "the summary comes first")
    }

    /// Without a file the summary says so, and where it looked; an upstream URL's query (which
    /// may hold a key) is not shown.
    @Test func theSummaryOfEmbeddedDefaultsAndACloudUpstream() throws {
        let defaults = try ConfigurationLoader.load(yaml: nil, source: nil, environment: [:])
        let lines = StartupSummary.lines(defaults, environment: [:], workingDirectory: "/srv/gw")
        #expect(lines.first == "dtwin \(DTwinVersion.current) bridge starting with the embedded defaults (no dtwin.yaml in /srv/gw)")
        #expect(lines.contains("store: SQLite /srv/gw/dtwin.sqlite, table digitaltwin"))
        #expect(lines.contains { $0.hasPrefix("spool: /srv/gw/dtwin-spool ") })
        #expect(lines.contains { $0.hasSuffix("API /api disabled: set DTWIN_API_TOKEN to enable it") })
        let cloud = try ConfigurationLoader.load(
            yaml: "upstream:\n  mode: apigw\n  url: https://abc.execute-api.us-west-2.amazonaws.com/prod/iot?key=k3y\n  auth: none\n",
            source: nil, environment: ["DTWIN_SPOOL_ENABLED": "false"])
        let cloudLines = StartupSummary.lines(cloud, environment: ["TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"])
        #expect(cloudLines.contains("upstream: apigw GET https://abc.execute-api.us-west-2.amazonaws.com/prod/iot (query not shown), auth none"))
        #expect(!cloudLines.joined().contains("k3y"))
        #expect(cloudLines.contains { $0.hasPrefix("store: none here") })
        #expect(cloudLines.contains { $0.hasPrefix("spool: off") })
        #expect(cloudLines.contains { $0.hasPrefix("Twilio: account set, no sender (set twilio.from)") })
    }

    @Test func helpShowsWhatIsTypedAndMistypedCommandsAreNamed() async throws {
        let send = try await DTwinBinary.run(["help", "send"])
        #expect(send.code == 0 && send.output.contains("(default: 5s)") && !send.output.contains("DurationArgument"), "\(send.output)")
        for verb in ["readings", "sms"] {
            let help = try await DTwinBinary.run([verb, "--help"])
            #expect(help.code == 0 && help.output.contains("--config") && !help.output.contains("--broker") && !help.output.contains("--ca"))
        }
        let unusedOption = try await DTwinBinary.run(["readings", "uno1", "--ca", "/nonexistent"])
        #expect(unusedOption.code == 2 && unusedOption.output.contains("Unknown option '--ca'"), "\(unusedOption.output)")
        let readings = try await DTwinBinary.run(["readings", "--help"])
        let words = readings.output.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("they do not change which end --limit keeps"), "\(readings.output)")

        let typo = try await DTwinBinary.run(["inpsect", "--count", "1"])
        #expect(typo.code == 2 && typo.output.contains("'inpsect' is not a dtwin command; did you mean 'inspect'?"), "\(typo.output)")
        #expect(typo.output.contains("bridge, inspect, send"))
        let helpTypo = try await DTwinBinary.run(["help", "nosuch"])
        #expect(helpTypo.code == 2 && helpTypo.output.contains("'nosuch' is not a dtwin command") && !helpTypo.output.contains("OVERVIEW"))
        let version = try await DTwinBinary.run(["--version"])
        #expect(version.code == 0 && version.output.trimmingCharacters(in: .whitespacesAndNewlines) == DTwinVersion.current)
        // The known ways in still work.
        #expect(try await DTwinBinary.run(["help", "inspect"]).output.contains("dtwin inspect"))
        #expect(try await DTwinBinary.run([]).output.contains("SUBCOMMANDS"))
    }

    /// An empty answer says whether the device exists: on standard error for `dtwin readings`
    /// (standard output stays clean for pipes), as `hint` in the API.
    @Test func anEmptyReadingsAnswerNamesTheDevicesThatExist() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("twin.sqlite").path
        let store = try SQLiteTwinStore(path: path)
        for (n, device) in ["uno1", "sim2"].enumerated() {
            try await store.put(
                TwinItem(
                    messageId: "m\(n)", device: device, ts: Timestamp.iso8601(millis: 1_764_000_000_000 + Int64(n) * 1000),
                    payload: "sim-\(device) data 1", kind: .reading, value: 1, source: "mqtt"))
        }
        try await store.close()
        let environment = ["DTWIN_STORE_PATH": path]
        let unknown = try await DTwinBinary.run(["readings", "uno2"], environment: environment)
        #expect(unknown.code == 0, "\(unknown.output)")
        #expect(unknown.output.contains("(no items)"))
        #expect(unknown.output.contains(#"no device "uno2" is known; the devices are: sim2, uno1"#), "\(unknown.output)")
        let outside = try await DTwinBinary.run(["readings", "uno1", "--since", "2030-01-01"], environment: environment)
        #expect(outside.output.contains("uno1 has items, the latest at 2025-11-24T16:00:00.000Z, but none in this range"), "\(outside.output)")
        let found = try await DTwinBinary.run(["readings", "uno1", "--json"], environment: environment)
        #expect(found.code == 0 && !found.output.contains("dtwin:"), "no hint when there are items")
    }

    /// A plain replay sends device traffic only, unretained: never the bridge's status or a
    /// command; the flags send them for those who mean it, and warnings say what was held back.
    @Test func replayDoesNotSpeakForTheBridgeOrCommandDevicesUnlessTold() async throws {
        let broker = try MosquittoProcess()
        defer { broker.stop() }
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let recording: [(String, Bool, String)] = [
            ("dtwin/bridge/status", true, "online"), ("dtwin/sim1/status", true, "online"), ("dtwin/sim1/up", false, "sim-sim1 data 5"),
            ("dtwin/sim1/down", false, "LIG"), ("dtwin/sim1/up", false, "sim-sim1 data 305"),
        ]
        let file = directory.appendingPathComponent("lab.jsonl").path
        try recording.enumerated().map { n, entry in
            Record(
                Observation(atMillis: 1_764_000_000_000 + Int64(n), topic: entry.0, qos: 1, retain: entry.1, payload: Array(entry.2.utf8)),
                meaning: nil
            )
            .line
        }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)

        let watcher = try await MessageCollector(port: broker.port, filters: ["lab/#"])
        let plain = try await DTwinBinary.run(["replay", file, "--speed", "max", "--prefix", "lab", "--broker", broker.url])
        #expect(plain.code == 0, "\(plain.output)")
        #expect(plain.output.contains("replayed 3 of 5 messages"))
        #expect(plain.output.contains("warning: 1 command(s) to devices (dtwin/sim1/down, …) not replayed: --include-commands"))
        #expect(plain.output.contains("warning: 1 message(s) of the bridge's own (dtwin/bridge/status, …) not replayed"))
        #expect(plain.output.contains("warning: 1 retained message(s) replayed without the retain flag: --keep-retain"))
        #expect(await watcher.waitFor { $0.count >= 3 })
        #expect(watcher.messages.map(\.topic) == ["lab/sim1/status", "lab/sim1/up", "lab/sim1/up"])
        #expect(watcher.messages.allSatisfy { !$0.retain })
        await watcher.close()
        // Nothing was left retained: a new subscriber gets nothing.
        let late = try await MessageCollector(port: broker.port, filters: ["lab/#"])
        try await Task.sleep(for: .milliseconds(300))
        #expect(late.messages.isEmpty)
        await late.close()

        let meant = try await DTwinBinary.run(
            ["replay", file, "--speed", "max", "--prefix", "lab", "--include-commands", "--keep-retain", "--broker", broker.url])
        #expect(meant.code == 0 && meant.output.contains("replayed 4 of 5 messages"), "\(meant.output)")
        let retained = try await MessageCollector(port: broker.port, filters: ["lab/#"])
        #expect(await retained.waitFor { $0.contains { $0.topic == "lab/sim1/status" && $0.retain } })
        #expect(!retained.messages.contains { $0.topic == "lab/bridge/status" })
        await retained.close()
    }
}
