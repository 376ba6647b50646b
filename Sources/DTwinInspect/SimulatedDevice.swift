import DTwinContract
import Foundation

/// `dtwin simulate`: a device that behaves like the UNO sketch. It reads a photoresistor
/// (a slow random walk around room light), lights its LED on `LIG` and turns it off on `ACK`;
/// the LED shines on the photoresistor, so a lit LED shows in the next readings.
public struct SimulatedDevice: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// `sim-<dev> data <adc>`, as the original sketch sends.
        case legacy
        /// `{"value": <adc>, "seq": <n>, "led": "on"|"off"}`.
        case json
    }

    /// What the LED adds to the photoresistor's reading (ADC counts, 0…1023).
    public static let ledGlow = 300

    public let name: DeviceName
    public let format: Format
    public private(set) var ledOn = false
    public private(set) var sequence: Int64 = 0
    private var light: Int
    private var random: SplitMix64

    public init(name: DeviceName, format: Format, seed: UInt64) {
        self.name = name
        self.format = format
        random = SplitMix64(seed: seed)
        light = 400 + Int(random.next() % 200)
    }

    /// `<dev>:awake`, sent once after connecting, as the sketch does on boot.
    public var awakePayload: String { "\(name):awake" }

    /// The next reading's payload.
    public mutating func nextReading() -> String {
        sequence += 1
        light = min(max(light + Int(random.next() % 41) - 20, 50), 700)
        let value = min(light + (ledOn ? Self.ledGlow : 0), 1023)
        switch format {
        case .legacy: return "sim-\(name) data \(value)"
        case .json: return #"{"value": \#(value), "seq": \#(sequence), "led": "\#(ledOn ? "on" : "off")"}"#
        }
    }

    /// Reacts to a command on the device's `down` topic; returns what it did, for its log line.
    public mutating func handle(command: [UInt8]) -> String {
        let text = String(decoding: command, as: UTF8.self).trimmingWhitespace()
        switch text.uppercased() {
        case "LIG":
            ledOn = true
            return "LIG: LED on"
        case "ACK":
            ledOn = false
            return "ACK: LED off"
        default:
            return "\(String(text).debugDescription): not a command this device knows (LIG, ACK)"
        }
    }
}
