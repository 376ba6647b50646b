import DTwinConfig
import DTwinContract
import Foundation

/// The `alerts:` rules of `local` mode (README: "Configuration"): a reading below or above a threshold
/// sends the rule's text to the device's phones, at most once per `cooldown` per rule and device.
///
/// Pure: the caller gives the time in milliseconds.
struct AlertState: Sendable {
    struct Key: Hashable {
        var rule: Int
        var device: DeviceName
    }

    let rules: [DTwinConfiguration.AlertRule]
    private var lastFired: [Key: Int64] = [:]

    init(rules: [DTwinConfiguration.AlertRule]) {
        self.rules = rules
    }

    /// The texts to send for `value` from `device` at `now`; remembers them for the cooldown.
    mutating func evaluate(device: DeviceName, value: Double, now: Int64) -> [String] {
        var texts: [String] = []
        for (index, rule) in rules.enumerated() where rule.device == "*" || rule.device == device.rawValue {
            let fires = rule.below.map { value < $0 } ?? false || rule.above.map { value > $0 } ?? false
            guard fires else { continue }
            let key = Key(rule: index, device: device)
            if let last = lastFired[key], now - last < rule.cooldown.nanoseconds / 1_000_000 { continue }
            lastFired[key] = now
            texts.append(Self.render(rule.text, device: device, value: value))
        }
        return texts
    }

    /// `{device}` and `{value}` (integers without a decimal point).
    static func render(_ template: String, device: DeviceName, value: Double) -> String {
        template.replacingOccurrences(of: "{device}", with: device.rawValue).replacingOccurrences(of: "{value}", with: value.readingText)
    }
}
