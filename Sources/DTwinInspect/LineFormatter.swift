import DTwinContract
import Foundation

/// `dtwin inspect`'s line for a person:
///
/// ```
/// 10:00:00.123  dtwin/uno1/up            q1    "sim-uno1 data 512"       uno1 reading 512
/// 10:00:00.130  dtwin/uno1/status        q1 R  "online"                  uno1 is online
/// 10:00:01.002  dtwin/esp-2/up           q1    hex 01 02 ff              esp-2 raw binary, forwarded as is
/// ```
/// With `colors` (a terminal) the parts are coloured by what they mean; piped, it is plain
/// text with the same columns.
public struct LineFormatter: Sendable {
    public var colors: Bool
    /// Columns grow to the longest topic seen, up to this, so lines stay aligned.
    public var maxTopicWidth = 40
    public var payloadWidth = 28
    private var topicWidth = 24

    public init(colors: Bool) {
        self.colors = colors
    }

    public mutating func line(_ observation: Observation, _ meaning: Meaning) -> String {
        topicWidth = min(max(topicWidth, observation.topic.count), maxTopicWidth)
        let time = Self.clock(observation.atMillis)
        let flags = "q\(observation.qos)" + (observation.retain ? " R" : "  ")
        let columns = [
            paint(time, .dim),
            paint(Self.pad(observation.topic, topicWidth), .cyan),
            paint(flags, observation.retain ? .yellow : .dim),
            Self.pad(Self.payloadText(observation.payload, limit: payloadWidth), payloadWidth),
            paint(meaning.summary, Self.color(of: meaning)),
        ]
        return columns.joined(separator: "  ")
    }

    /// A payload in a few characters: quoted text with escapes, or hex (short binary) or
    /// base64 (long binary), cut at `limit` with `…`.
    public static func payloadText(_ payload: [UInt8], limit: Int) -> String {
        let observation = Observation(atMillis: 0, topic: "", qos: 0, retain: false, payload: payload)
        let full: String
        if let text = observation.text {
            full = text.debugDescription
        } else if payload.count <= 16 {
            full = "hex " + payload.map { String(format: "%02x", $0) }.joined(separator: " ")
        } else {
            full = "base64 " + Data(payload).base64EncodedString()
        }
        return full.count <= limit ? full : String(full.prefix(limit - 1)) + "…"
    }

    /// `10:00:00.123`, UTC like every other time dtwin prints.
    static func clock(_ millis: Int64) -> String {
        String(Timestamp.iso8601(millis: millis).dropFirst(11).prefix(12))
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    enum Color: String {
        case dim = "2"
        case red = "31"
        case green = "32"
        case yellow = "33"
        case blue = "34"
        case magenta = "35"
        case cyan = "36"
        case bold = "1"
    }

    static func color(of meaning: Meaning) -> Color {
        switch meaning {
        case .reading, .awake: return .green
        case .raw: return .bold
        case .command, .smsRequest, .twinSet: return .magenta
        case .deviceStatus, .bridgeStatus, .twinDocument: return .blue
        case .deadLetter, .invalidDevice, .twinRejected: return .red
        case .outsideTree: return .dim
        }
    }

    func paint(_ text: String, _ color: Color) -> String {
        colors ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }
}
