import DTwinContract
import Foundation

/// `dtwin simulate`: a device that behaves like the UNO sketch. It reads a photoresistor
/// (a slow random walk around room light), lights its LED on `LIG` and turns it off on `ACK`,
/// reads every N seconds after `PERIOD N`; the LED shines on the photoresistor, so a lit LED
/// shows in the next readings. Like the sketch, it reports its LED and period (a JSON reading,
/// ``stateReport()``) at start-up and after every change, for its twin's `reported` state.
public struct SimulatedDevice: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `sim-<dev> data <adc>`, as the original sketch sends.
        case legacy
        /// `{"value": <adc>, "seq": <n>, "led": "on"|"off", "period": <s>}`.
        case json
    }

    /// What its state reports say it runs (the twin's reported `firmware`).
    public static let firmware = "dtwin-simulate"

    /// What the LED adds to the photoresistor's reading (ADC counts, 0…1023).
    public static let ledGlow = 300

    public let name: DeviceName
    public let format: Format
    public private(set) var ledOn = false
    /// Seconds between readings (`PERIOD N` changes it).
    public private(set) var period: Double
    public private(set) var sequence: Int64 = 0
    private var light: Int
    private var random: SplitMix64

    /// The `PERIOD` a simulated device takes, in seconds: from 1 (the sketch: 10) to a day.
    public static let periods = 1...86_400

    public init(name: DeviceName, format: Format, seed: UInt64, period: Double = 1) {
        self.name = name
        self.format = format
        self.period = period
        random = SplitMix64(seed: seed)
        light = 400 + Int(random.next() % 200)
    }

    /// `<dev>:awake`, sent once after connecting, as the sketch does on boot.
    public var awakePayload: String { "\(name):awake" }

    /// The next reading's payload.
    public mutating func nextReading() -> String {
        let value = nextValue()
        switch format {
        case .legacy: return "sim-\(name) data \(value)"
        case .json: return #"{"value": \#(value), "seq": \#(sequence), "led": "\#(ledOn ? "on" : "off")", "period": \#(period.readingText)}"#
        }
    }

    /// A reading with the LED and period beside it, as the sketch sends at start-up and after
    /// every change: `{"value":512,"led":true,"period":60,"firmware":"dtwin-simulate"}` (with
    /// `seq` in the JSON format).
    public mutating func stateReport() -> String {
        let value = nextValue()
        let seq = format == .json ? #""seq":\#(sequence),"# : ""
        return #"{"value":\#(value),\#(seq)"led":\#(ledOn),"period":\#(period.readingText),"firmware":"\#(Self.firmware)"}"#
    }

    private mutating func nextValue() -> Int {
        sequence += 1
        light = min(max(light + Int(random.next() % 41) - 20, 50), 700)
        return min(light + (ledOn ? Self.ledGlow : 0), 1023)
    }

    /// What a command did: the words for the log line, and whether the LED or the period
    /// changed (then the device reports its state).
    public struct Reaction: Sendable, Equatable {
        public var said: String
        public var changed: Bool

        public init(said: String, changed: Bool) {
            self.said = said
            self.changed = changed
        }
    }

    /// Reacts to a command on the device's `down` topic.
    public mutating func handle(command: [UInt8]) -> Reaction {
        let text = String(decoding: command, as: UTF8.self).trimmingWhitespace()
        let words = text.uppercased().split(separator: " ")
        switch words.first {
        case "LIG" where words.count == 1:
            ledOn = true
            return Reaction(said: "LIG: LED on", changed: true)
        case "ACK" where words.count == 1:
            ledOn = false
            return Reaction(said: "ACK: LED off", changed: true)
        case "PERIOD" where words.count == 2:
            guard let seconds = Int(words[1]), Self.periods.contains(seconds) else {
                return Reaction(said: "\(String(text).debugDescription): PERIOD takes 1 to 86400 seconds", changed: false)
            }
            period = Double(seconds)
            return Reaction(said: "PERIOD \(seconds): a reading every \(seconds) s", changed: true)
        default:
            return Reaction(said: "\(String(text).debugDescription): not a command this device knows (LIG, ACK, PERIOD <s>)", changed: false)
        }
    }
}
