import DTwinContract
import DTwinInspect
import Foundation
import Testing

/// What `dtwin inspect`, `replay` and `simulate` compute, without a broker.
@Suite struct MeaningTests {
    let tree = try! TopicTree()

    func meaning(_ topic: String, _ payload: String) -> Meaning {
        Meaning.of(Observation(atMillis: 0, topic: topic, qos: 1, retain: false, payload: Array(payload.utf8)), in: tree)
    }

    @Test func everyKindOfMessageIsNamed() {
        let uno1 = DeviceName("uno1")!
        #expect(meaning("dtwin/uno1/up", "sim-uno1 data 512") == .reading(device: uno1, value: 512, unit: nil, seq: nil, format: .legacyText))
        #expect(
            meaning("dtwin/uno1/up", #"{"value": 21.5, "unit": "C", "seq": 7}"#)
                == .reading(device: uno1, value: 21.5, unit: "C", seq: 7, format: .json))
        #expect(meaning("dtwin/uno1/up", "uno1:awake") == .awake(device: uno1))
        #expect(meaning("dtwin/uno1/up", "hello") == .raw(device: uno1, format: .text, note: nil))
        #expect(meaning("dtwin/uno1/down", "LIG") == .command(device: uno1, text: "LIG"))
        #expect(meaning("dtwin/uno1/status", "offline") == .deviceStatus(device: uno1, status: "offline"))
        #expect(meaning("dtwin/uno1/sms", "door open") == .smsRequest(device: uno1, text: "door open"))
        #expect(meaning("dtwin/bridge/status", "online") == .bridgeStatus(status: "online"))
        let letter = DeadLetter(topic: "dtwin/uno3/up", payload: Array("x".utf8), reason: "upstream answered 400", device: "uno3")
        let letterJSON = String(decoding: try! JSONEncoder().encode(letter), as: UTF8.self)
        #expect(meaning("dtwin/bridge/deadletter", letterJSON) == .deadLetter(letter))
        #expect(meaning("dtwin/bridge/deadletter", "not json") == .deadLetter(nil))
        guard case .invalidDevice(let reason) = meaning("dtwin/a.b/up", "x") else {
            Issue.record("not invalid")
            return
        }
        #expect(reason.contains("contains '.'"))
        guard case .outsideTree = meaning("other/uno1/up", "x") else {
            Issue.record("not outside")
            return
        }
    }

    @Test func summariesAndFieldsSayWhatItIs() {
        let reading = meaning("dtwin/uno1/up", #"{"value": 21.5, "unit": "C"}"#)
        #expect(reading.summary == "uno1 reading 21.5 C")
        #expect(
            reading.fields == [
                "device": .string("uno1"), "type": .string("reading"), "value": .number(21.5), "unit": .string("C"), "format": .string("json"),
            ])
        #expect(meaning("dtwin/uno1/down", "LIG").summary == #"command "LIG" for uno1"#)
        let letter = DeadLetter(topic: "dtwin/uno3/up", payload: [1], reason: "too big", device: "uno3")
        let dead = Meaning.deadLetter(letter)
        #expect(dead.summary == "DEAD LETTER from uno3: too big")
        #expect(dead.device == DeviceName("uno3"))
        #expect(dead.fields["reason"] == .string("too big"))
    }

    /// The bridge's twin topics, read back as a person would want them.
    @Test func twinTopicsAreReadAsTheTwin() {
        let uno1 = DeviceName("uno1")!
        var twin = TwinDocument(device: "uno1")
        twin = (try? twin.settingDesired(["led": .bool(true), "period": .number(300)], schema: .uno, atMillis: 1).get()) ?? twin
        twin = twin.settingReported(["led": .bool(false), "period": .number(300), "value": .number(512)], atMillis: 2)
        let document = meaning("dtwin/uno1/state", String(decoding: twin.jsonBytes, as: UTF8.self))
        #expect(document == .twinDocument(device: uno1, twin))
        #expect(document.summary == "uno1 twin v2: desired led=on, period=300; reported led=off, period=300, value=512; delta led")
        #expect(document.fields["delta"] == .object(["led": .bool(true)]) && document.fields["version"] == .number(2))
        #expect(meaning("dtwin/uno1/state", "nonsense") == .twinDocument(device: uno1, nil))
        let set = meaning("dtwin/uno1/state/set", #"{"desired": {"led": false}}"#)
        #expect(set.summary == #"desired state asked for uno1: {"desired": {"led": false}}"#)
        let rejection = TwinRejection(.staleVersion(current: 4), clientToken: "t1")
        let rejected = meaning("dtwin/uno1/state/rejected", String(decoding: rejection.jsonBytes, as: UTF8.self))
        #expect(rejected == .twinRejected(device: uno1, rejection))
        #expect(rejected.summary == "twin change for uno1 REFUSED (409): the twin has changed: its version is now 4")
        #expect(rejected.device == uno1 && rejected.fields["code"] == .number(409))
    }
}

@Suite struct LineFormatterTests {
    let tree = try! TopicTree()

    func observation(_ topic: String, _ payload: [UInt8], retain: Bool = false) -> Observation {
        Observation(atMillis: 1_764_064_800_123, topic: topic, qos: 1, retain: retain, payload: payload)
    }

    @Test func plainLinesAreAlignedAndColouredOnesCarryEscapes() {
        var plain = LineFormatter(colors: false)
        let short = observation("dtwin/a/up", Array("sim-a data 1".utf8))
        let long = observation("dtwin/uno-2/status", Array("online".utf8), retain: true)
        let first = plain.line(short, Meaning.of(short, in: tree))
        let second = plain.line(long, Meaning.of(long, in: tree))
        #expect(first.hasPrefix("10:00:00.123  dtwin/a/up "))
        #expect(!first.contains("\u{1B}") && !second.contains("\u{1B}"))
        #expect(second.contains("q1 R"))
        // The payload column starts at the same place on both lines.
        #expect(first.range(of: "\"sim-a")!.lowerBound.utf16Offset(in: first) == second.range(of: "\"online")!.lowerBound.utf16Offset(in: second))
        var colored = LineFormatter(colors: true)
        let line = colored.line(short, Meaning.of(short, in: tree))
        #expect(line.contains("\u{1B}[32ma reading 1\u{1B}[0m"))
    }

    @Test func payloadsShowAsTextHexOrBase64() {
        #expect(LineFormatter.payloadText(Array("LIG".utf8), limit: 30) == #""LIG""#)
        #expect(LineFormatter.payloadText(Array("a\nb".utf8), limit: 30) == #""a\nb""#)
        #expect(LineFormatter.payloadText([0x01, 0x02, 0xFF], limit: 30) == "hex 01 02 ff")
        let long = LineFormatter.payloadText([UInt8](repeating: 0xFF, count: 40), limit: 20)
        #expect(long.hasPrefix("base64 ////") && long.hasSuffix("…") && long.count == 20)
        #expect(LineFormatter.payloadText(Array(String(repeating: "x", count: 50).utf8), limit: 10) == "\"xxxxxxxx…")
    }
}

@Suite struct RecordTests {
    @Test func textAndBinaryRoundTrip() throws {
        for payload in [Array("sim-uno1 data 5".utf8), [0x00, 0xFF, 0x10]] {
            let observation = Observation(atMillis: 1_764_064_800_123, topic: "dtwin/uno1/up", qos: 1, retain: true, payload: payload)
            let line = Record(observation, meaning: nil).line
            #expect(!line.contains("\n"))
            #expect(try Record.parse(line) == observation)
        }
        let binary = Record(Observation(atMillis: 0, topic: "t", qos: 0, retain: false, payload: [0xFF]), meaning: nil)
        #expect(binary.payload == nil && binary.payloadBase64 == "/w==")
    }

    @Test func badLinesSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("not json", "not a JSON object"),
            (#"{"at":"yesterday","topic":"t","qos":1,"retain":false,"payload":"x"}"#, "is not an ISO-8601 time"),
            (#"{"at":"2026-11-25T10:00:00Z","topic":"t","qos":5,"retain":false,"payload":"x"}"#, "qos 5"),
            (#"{"at":"2026-11-25T10:00:00Z","topic":"dtwin/#","qos":1,"retain":false,"payload":"x"}"#, "cannot be published to"),
            (#"{"at":"2026-11-25T10:00:00Z","topic":"t","qos":1,"retain":false}"#, "no payload"),
            (#"{"at":"2026-11-25T10:00:00Z","topic":"t","qos":1,"retain":false,"payloadBase64":"%%"}"#, "not base64"),
        ]
        for (line, says) in cases {
            do {
                _ = try Record.parse(line)
                Issue.record("accepted \(line)")
            } catch {
                #expect(error.reason.contains(says), "\(line): \(error)")
            }
        }
    }
}

@Suite struct StatsReplayAndSimulationTests {
    let tree = try! TopicTree()

    @Test func statsCountRateLastValueAndStatus() {
        var stats = DeviceStats()
        for n in 0..<20 {
            let observation = Observation(
                atMillis: Int64(n) * 1000, topic: "dtwin/uno1/up", qos: 1, retain: false, payload: Array("sim-uno1 data \(n)".utf8))
            stats.add(observation, Meaning.of(observation, in: tree))
        }
        let status = Observation(atMillis: 19_500, topic: "dtwin/uno1/status", qos: 1, retain: false, payload: Array("online".utf8))
        stats.add(status, Meaning.of(status, in: tree))
        let command = Observation(atMillis: 19_600, topic: "dtwin/uno1/down", qos: 1, retain: false, payload: Array("LIG".utf8))
        stats.add(command, Meaning.of(command, in: tree))
        let row = try! #require(stats.rows["uno1"])
        #expect(row.messages == 21, "20 readings and a status; the command is not the device's")
        #expect(row.lastValue == "19" && row.status == "online")
        // In the 10 s window up to 20 s: the readings of 11…19 s and the status.
        #expect(stats.rate(row, now: 20_000) == 1.0)
        let table = stats.table(now: 22_000)
        #expect(table.split(separator: "\n").first == "DEVICE  MESSAGES  RATE/S  LAST VALUE  LAST SEEN  STATUS")
        #expect(table.contains("uno1    21        0.8     19          2s ago     online"), "\(table)")
    }

    @Test func replayKeepsOrSpeedsUpTheGapsAndMovesThePrefix() {
        let recording = [0, 400, 1000].map {
            Observation(atMillis: 5_000 + Int64($0), topic: "dtwin/uno1/up", qos: 1, retain: false, payload: [UInt8($0 / 100)])
        }
        #expect(ReplayPlan(recording, speed: .factor(1)).steps.map(\.offsetMillis) == [0, 400, 1000])
        #expect(ReplayPlan(recording, speed: .factor(2)).steps.map(\.offsetMillis) == [0, 200, 500])
        #expect(ReplayPlan(recording, speed: .max).steps.map(\.offsetMillis) == [0, 0, 0])
        #expect(ReplayPlan(recording, speed: .max, prefix: "lab").steps.map(\.observation.topic) == Array(repeating: "lab/uno1/up", count: 3))
        #expect(ReplayPlan.Speed(argument: "0") == nil && ReplayPlan.Speed(argument: "fast") == nil && ReplayPlan.Speed(argument: "max") == .max)
    }

    /// A recording holds the bridge's retained status and the commands it sent: by default only
    /// device traffic goes out, unretained, and the rest is counted for the warnings.
    @Test func replaySendsDeviceTrafficOnlyUnlessToldOtherwise() {
        let topics: [(String, Bool)] = [
            ("dtwin/bridge/status", true), ("dtwin/uno1/status", true), ("dtwin/uno1/up", false), ("dtwin/uno1/down", false),
            ("dtwin/uno1/sms", false), ("dtwin/bridge/deadletter", false), ("dtwin/bridge/ipcommand/uno1", false),
            ("lab/x/uno2/up", false), ("other/thing", false), ("dtwin/uno1/down", false),
        ]
        let recording = topics.enumerated().map { n, entry in
            Observation(atMillis: 1_000 + Int64(n) * 100, topic: entry.0, qos: 1, retain: entry.1, payload: Array("p\(n)".utf8))
        }
        #expect(ReplayPlan.role(of: "dtwin/uno1/up") == .deviceTraffic && ReplayPlan.role(of: "a/b/uno1/sms") == .deviceTraffic)
        #expect(ReplayPlan.role(of: "dtwin/uno1/down") == .command && ReplayPlan.role(of: "dtwin/bridge/status") == .bridge)
        #expect(ReplayPlan.role(of: "dtwin/bad.name/up") == .other && ReplayPlan.role(of: "uno1/up") == .other)
        // The twin: asking for a desired state is like a command; the document and refusals are the bridge's.
        #expect(ReplayPlan.role(of: "dtwin/uno1/state/set") == .command && ReplayPlan.role(of: "lab/x/uno1/state/set") == .command)
        #expect(ReplayPlan.role(of: "dtwin/uno1/state") == .bridge && ReplayPlan.role(of: "dtwin/uno1/state/rejected") == .bridge)
        #expect(ReplayPlan.role(of: "dtwin/uno1/state/other") == .other)

        let plain = ReplayPlan(recording, speed: .factor(1))
        #expect(plain.steps.map(\.observation.topic) == ["dtwin/uno1/status", "dtwin/uno1/up", "dtwin/uno1/sms", "lab/x/uno2/up"])
        #expect(plain.steps.allSatisfy { !$0.observation.retain })
        #expect(plain.steps.map(\.offsetMillis) == [0, 100, 300, 600], "gaps count from the first message sent")
        #expect(plain.heldBack[.command] == .init(count: 2, example: "dtwin/uno1/down"))
        #expect(plain.heldBack[.bridge]?.count == 3 && plain.heldBack[.other]?.count == 1 && plain.unretained == 1)
        #expect(plain.warnings.count == 4)
        #expect(plain.warnings[0].contains("2 command(s)") && plain.warnings[0].contains("--include-commands"))
        #expect(plain.warnings[3].contains("1 retained") && plain.warnings[3].contains("--keep-retain"))

        let meant = ReplayPlan(recording, speed: .max, options: .init(includeCommands: true, keepRetain: true))
        #expect(meant.steps.count == 6 && meant.heldBack[.command] == nil && meant.unretained == 0)
        #expect(meant.steps.first?.observation.retain == true)
        #expect(meant.warnings.count == 2, "the bridge's own and the foreign topics are still held back")
    }

    @Test func aSimulatedDeviceReadsLikeTheSketchAndAnswersCommands() {
        var legacy = SimulatedDevice(name: DeviceName("sim1")!, format: .legacy, seed: 7)
        #expect(legacy.awakePayload == "sim1:awake")
        let first = legacy.nextReading()
        let decoded = DevicePayload.decode(Array(first.utf8))
        #expect(decoded.kind == .reading && decoded.namedDevice == "sim1", "\(first)")
        #expect(legacy.handle(command: Array("LIG".utf8)) == .init(said: "LIG: LED on", changed: true) && legacy.ledOn)
        let lit = DevicePayload.decode(Array(legacy.nextReading().utf8)).value ?? 0
        // The random walk moves at most 20 a reading; the LED adds 300.
        #expect(lit >= (decoded.value ?? 0) + Double(SimulatedDevice.ledGlow) - 20)
        #expect(legacy.handle(command: Array(" ack ".utf8)) == .init(said: "ACK: LED off", changed: true) && !legacy.ledOn)
        #expect(legacy.handle(command: Array("DANCE".utf8)).said.contains("not a command this device knows"))
        #expect(legacy.handle(command: Array("DANCE".utf8)).changed == false)
        // PERIOD, and the state report the sketch sends at start-up and after every change.
        #expect(legacy.handle(command: Array("period 30".utf8)) == .init(said: "PERIOD 30: a reading every 30 s", changed: true))
        #expect(legacy.period == 30)
        #expect(legacy.handle(command: Array("PERIOD 0".utf8)).changed == false && legacy.period == 30)
        let report = DevicePayload.decode(Array(legacy.stateReport().utf8))
        #expect(report.kind == .reading && report.state == ["led": .bool(false), "period": .number(30), "firmware": .string("dtwin-simulate")])
        #expect(
            legacy.stateReport().hasPrefix(#"{"value":"#) && legacy.stateReport().hasSuffix(#","led":false,"period":30,"firmware":"dtwin-simulate"}"#)
        )

        var json = SimulatedDevice(name: DeviceName("sim2")!, format: .json, seed: 7)
        let reading = DevicePayload.decode(Array(json.nextReading().utf8))
        #expect(reading.kind == .reading && reading.seq == 1 && reading.format == .json)
        _ = json.handle(command: Array("LIG".utf8))
        #expect(json.nextReading().contains(#""led": "on", "period": 1}"#))
        #expect(DevicePayload.decode(Array(json.stateReport().utf8)).seq == 3)
        // The same seed gives the same readings: demos and benchmarks can be repeated.
        var again = SimulatedDevice(name: DeviceName("sim1")!, format: .legacy, seed: 7)
        #expect(again.nextReading() == first)
    }
}
